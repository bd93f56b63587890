import asyncio
import json
import threading
from concurrent.futures import ThreadPoolExecutor

from imagejourney.reference_app.live import LiveChannels, preview_message
from PIL import Image


def test_previews_reach_only_their_session_and_in_order():
    channels = LiveChannels()

    async def scenario():
        mine, other = channels.stream("mine"), channels.stream("other")
        assert await mine.__anext__() == ": connected\n\n"
        assert await other.__anext__() == ": connected\n\n"
        image = Image.new("RGB", (8, 8), "red")
        worker = threading.Thread(
            target=lambda: [channels.publish("mine", preview_message(7, s, image, 128)) for s in (1, 2)]
        )
        worker.start()
        worker.join()
        first, second = [json.loads((await mine.__anext__()).removeprefix("data: ")) for _ in range(2)]
        assert (first["job"], first["step"], second["step"]) == (7, 1, 2)
        assert first["src"].startswith("data:image/jpeg;base64,") and first["width"] == 128
        assert channels.publish("nobody", {"job": 1}) is False
        await mine.aclose()
        await other.aclose()
        assert channels.subscribers == {}

    # In a thread of its own: once a browser test has run, pytest-playwright's sync API keeps an
    # event loop running in this one, and asyncio.run refuses to start inside it.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()


def test_a_session_has_one_watcher():
    channels = LiveChannels()

    async def scenario():
        assert channels.claim("mine")
        mine = channels.stream("mine")
        assert await mine.__anext__() == ": connected\n\n"
        assert not channels.claim("mine")  # another client cannot listen in on this session
        assert channels.claim("other")
        await mine.aclose()
        assert channels.claim("mine")  # once the owner has gone, the session may be watched again

    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result()
