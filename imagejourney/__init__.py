"""imagejourney: browser end-to-end workflow tester for image-generation products."""
