// imagejourney in-page timing probe, added to every page with add_init_script before any of
// the page's own scripts run. Every time it records is on the page's performance timeline
// (ms since performance.timeOrigin), the clock the browser itself paints and dispatches by.
//
//  - action click: event.timeStamp of the trusted click (or Enter) on the action's control,
//    caught in the capture phase so no page handler can delay or hide it.
//  - paint: Element Timing renderTime of each <img> painted inside the output region. Images
//    there are tagged with an `elementtiming` attribute as soon as they appear (a
//    MutationObserver runs before the next paint), so src swaps and new <img>s are both seen.
//    Each image gets its own tag, so a paint names its element even after the element is gone.
//  - paint of this action: a paint whose content (a hash of the image drawn at 16×16) the
//    region had not shown before the click. The previous final re-mounted by a re-render, or a
//    history thumbnail of an earlier result, paints again after the click: same content, so
//    it is recorded as `old` and is neither a preview nor the final. Images outside the
//    profile's preview_image / final_image selectors are recorded with role "other".
//  - draw-call paint (a <canvas> output): the probe wraps the drawing APIs (2D drawImage and
//    putImageData, on <canvas> and on an OffscreenCanvas transferred from one; WebGL
//    texImage2D / texSubImage2D; WebGPU copyExternalImageToTexture). A draw of an image source
//    (img, bitmap, video, canvas, ImageData) onto a canvas in the output region is recorded with
//    the source's URL, size and content hash and the destination rectangle; each picture once
//    per canvas, so a canvas redrawn every frame records a picture when it first appears. Its
//    paint time is the presentation of the frame that painted it: in the same task as the draw
//    the probe puts a 1×1, all but transparent <img> tagged for Element Timing on the page (at
//    the viewport's corner, removed once its entry comes), painted in the same frame, and takes
//    that entry's renderTime. Until the entry comes, or where none comes, it is the start of the
//    frame after the one that painted it (the next animation frame for a draw made in an
//    animation-frame callback, else the one after). Drawing with no image source (node
//    highlights, progress bars, dimming, text) is never a paint. What was drawn is kept: the
//    source's URL, or a copy of its pixels taken at the draw.
//
// An action is done when the product shows its final image; the final's paint time arrives
// with Element Timing's entry, about a frame later. Until then the action is "unsettled": the
// runner saves the final meanwhile, and the next prepare waits for the entry and hands the
// action's record over (takeSettled).
(function (config) {
  if (window.__imagejourney) return;
  const TAG = "imagejourney-output";
  const paints = []; // {t, method, paintTime, url, key, src, content, role, finalOf}
  const seenAt = new Map(); // content → when the output region first showed it (performance.now())
  let action = null; // {id, name, control, click, before, …}
  const unsettled = []; // actions whose final is shown and not yet painted: {…action, target, deadline}
  let tagged = 0;

  // Element Timing truncates data: URLs to their first 100 characters.
  const sameUrl = (a, b) => (a.startsWith("data:") ? a.slice(0, 100) === b.slice(0, 100) : a === b);
  const inOutput = (el) => el instanceof Element && el.closest(config.output) !== null;
  // The canvases of the output region: inside it, or the region itself (`output: "#graph-canvas"`).
  const regionCanvases = () => [...document.querySelectorAll(config.output)]
    .flatMap((r) => (r instanceof HTMLCanvasElement ? [r] : [...r.querySelectorAll("canvas")]));
  const visible = (el) => el instanceof Element && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
  const enabled = (el) => el instanceof Element && !el.disabled && el.getAttribute("aria-disabled") !== "true";

  // A small hash of what an image shows (its pixels at 16×16, FNV-1a, and its natural size),
  // so the same picture re-mounted or re-served under another URL is known as the same. Null
  // when the pixels cannot be read (a cross-origin image served without CORS).
  const hashCanvas = document.createElement("canvas");
  hashCanvas.width = hashCanvas.height = 16;
  const hashContext = hashCanvas.getContext("2d", { willReadFrequently: true });
  const drawForHash = CanvasRenderingContext2D.prototype.drawImage;
  const contents = new WeakMap(); // img → {src, content}: hashed once per source
  function contentOf(img) {
    if (!(img instanceof HTMLImageElement) || !img.complete || !img.naturalWidth) return null;
    const src = img.currentSrc || img.src;
    const cached = contents.get(img);
    if (cached && cached.src === src) return cached.content;
    let content = null;
    try {
      hashContext.clearRect(0, 0, 16, 16);
      drawForHash.call(hashContext, img, 0, 0, 16, 16);
      const data = hashContext.getImageData(0, 0, 16, 16).data;
      let h = 0x811c9dc5;
      for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193);
      content = `${img.naturalWidth}x${img.naturalHeight}:${(h >>> 0).toString(16).padStart(8, "0")}`;
    } catch (e) {
      content = null;
    }
    contents.set(img, { src, content });
    return content;
  }
  // A blob: image may be revoked before the runner reads it after the action: a copy of it (a
  // JPEG, long side at most 256 px) is taken as its paint is seen, after the paint.
  function copyOf(img) {
    const scale = Math.min(1, 256 / Math.max(img.naturalWidth, img.naturalHeight));
    try {
      return copyOfSource(img, Math.max(1, Math.round(img.naturalWidth * scale)),
                          Math.max(1, Math.round(img.naturalHeight * scale))).toDataURL("image/jpeg", 0.85);
    } catch (e) {
      return null;
    }
  }
  const noteSeen = (content, t) => {
    if (content !== null && !(seenAt.get(content) <= t)) seenAt.set(content, t);
  };
  // Content the output region showed before time `t` (an action's click).
  const shownBefore = (content, t) => content !== null && seenAt.has(content) && seenAt.get(content) < t;
  // "final", "preview" or "other" (an image in the region that is neither: a gallery thumbnail).
  function roleOf(el) {
    if (!(el instanceof Element)) return null;
    if (el.matches(config.output + " " + config.final_image)) return "final";
    return el.matches(config.output + " " + config.preview_image) ? "preview" : "other";
  }

  // Draw calls ------------------------------------------------------------------------------
  const putForCopy = CanvasRenderingContext2D.prototype.putImageData;
  const offscreenOwners = new WeakMap(); // OffscreenCanvas → the <canvas> it was transferred from
  const drawnOn = new WeakMap(); // canvas → Set of contents drawn on it
  const copies = new Map(); // draw paint number → a canvas holding the pixels drawn (sources with no URL)
  const COPIES_KEPT = 48;
  let draws = 0;
  let insideFrameCallback = false;
  const awaitingFrame = { inFrame: [], between: [] }; // draw paints whose frame has not begun yet
  let framesWanted = false;
  const sourceKinds = ["HTMLImageElement", "HTMLCanvasElement", "HTMLVideoElement", "ImageBitmap", "OffscreenCanvas",
                       "ImageData", "VideoFrame", "SVGImageElement"].map((name) => window[name]).filter(Boolean);
  const isImageSource = (s) => s !== null && typeof s === "object" && sourceKinds.some((kind) => s instanceof kind);
  function sizeOf(s) {
    if (s instanceof HTMLImageElement) return [s.naturalWidth, s.naturalHeight];
    if (s instanceof HTMLVideoElement) return [s.videoWidth, s.videoHeight];
    if (window.VideoFrame && s instanceof VideoFrame) return [s.displayWidth, s.displayHeight];
    return [s.width && s.width.baseVal ? s.width.baseVal.value : s.width, s.height && s.height.baseVal ? s.height.baseVal.value : s.height];
  }
  function hashOfSource(s) {
    if (s instanceof HTMLImageElement) return contentOf(s);
    try {
      let data;
      if (s instanceof ImageData) {
        data = s.data;
      } else {
        hashContext.clearRect(0, 0, 16, 16);
        drawForHash.call(hashContext, s, 0, 0, 16, 16);
        data = hashContext.getImageData(0, 0, 16, 16).data;
      }
      const step = Math.max(1, Math.floor(data.length / 4096));
      let h = 0x811c9dc5;
      for (let i = 0; i < data.length; i += step) h = Math.imul(h ^ data[i], 0x01000193);
      const [w, ht] = sizeOf(s);
      return `${w}x${ht}:${(h >>> 0).toString(16).padStart(8, "0")}`;
    } catch (e) {
      return null;
    }
  }
  function copyOfSource(s, w, h) {
    const copy = document.createElement("canvas");
    copy.width = w;
    copy.height = h;
    const context = copy.getContext("2d");
    if (s instanceof ImageData) putForCopy.call(context, s, 0, 0);
    else drawForHash.call(context, s, 0, 0, w, h);
    return copy;
  }
  // Paint times: a draw made while the page's animation-frame callbacks run is painted in this
  // frame (its paint time is the next frame's start); one made between frames is painted in the
  // next frame (the start of the one after). A frame's start can precede a draw made in the task
  // just before it on a busy machine; nothing is shown before it is drawn.
  function wantFrames() {
    if (framesWanted) return;
    framesWanted = true;
    frameRequest((first) => {
      for (const p of awaitingFrame.inFrame.splice(0)) if (!p.presented) p.t = Math.max(first, p.drawnAt);
      const next = awaitingFrame.between.splice(0);
      frameRequest((second) => {
        for (const p of next) if (!p.presented) p.t = Math.max(second, p.drawnAt);
        framesWanted = false;
        if (awaitingFrame.inFrame.length || awaitingFrame.between.length) wantFrames();
        if (wake) wake();
      });
    });
  }
  // A draw's role: by the canvas drawn on, when previews and finals have canvases of their own;
  // else by the <img> drawn, when final_image and preview_image tell it apart (ComfyUI's classic
  // canvas draws its previews from blob: URLs and its final from /api/view?…&type=output). An
  // image both selectors match (the defaults, "img") is not told apart: null.
  function roleOfDraw(canvas, source) {
    if (canvas.matches(config.output + " " + config.final_image)) return "final";
    if (canvas.matches(config.output + " " + config.preview_image)) return "preview";
    if (!(source instanceof HTMLImageElement)) return null;
    const final = source.matches(config.final_image);
    return final === source.matches(config.preview_image) ? null : final ? "final" : "preview";
  }
  function noteDraw(target, source, api, rect) {
    const canvas = offscreenOwners.get(target) || target;
    if (!(canvas instanceof HTMLCanvasElement) || !canvas.isConnected || !inOutput(canvas) || source === canvas) return;
    if (!isImageSource(source)) return;
    const [w, h] = sizeOf(source);
    if (!(w >= 8 && h >= 8)) return; // a pattern tile or a sliver of a sprite, not a picture
    const url = source instanceof HTMLImageElement ? source.currentSrc || source.src : null;
    const content = hashOfSource(source) ?? (url ? `url:${url}` : null);
    if (content === null) return;
    // The same picture drawn again from the same source is no new draw (a canvas redrawn every
    // frame); under a URL of its own it is (a new result that looks like the last one).
    const drawn = url ? `${content} ${url}` : content;
    if (!drawnOn.has(canvas)) drawnOn.set(canvas, new Set());
    if (drawnOn.get(canvas).has(drawn)) return;
    drawnOn.get(canvas).add(drawn);
    const now = performance.now();
    noteSeen(content, now);
    const number = ++draws;
    if (!url) {
      copies.set(number, copyOfSource(source, w, h));
      if (copies.size > COPIES_KEPT) copies.delete(copies.keys().next().value);
    }
    const paint = { t: null, drawnAt: now, method: "draw-call", api, paintTime: null, url: url || `${api}:${content}`,
                    key: canvas, src: url, copy: url ? null : number, content, size: [w, h], rect,
                    role: roleOfDraw(canvas, source), finalOf: null };
    paints.push(paint);
    (insideFrameCallback ? awaitingFrame.inFrame : awaitingFrame.between).push(paint);
    wantFrames();
    presentWith(paint);
  }
  // The presentation of the frame that shows a draw: a 1×1, all but transparent <img> tagged for
  // Element Timing is put on the page in the same task as the draw, so it is painted in the same
  // frame, and its entry's renderTime is that frame's presentation. Until the entry comes (and
  // where none comes: a page not painted) the paint time is the frame's start, as above.
  const PRESENT = "imagejourney-present";
  const presentSource = new Image();
  presentSource.src = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNoaGhgBAAEhgGCRDYvWgAAAABJRU5ErkJggg==";
  const presenting = new Map(); // identifier → the draw paint it presents
  const PRESENT_WAIT_MS = 2000; // an action is not done before its draws' entries come, or this passes
  let presented = 0;
  function presentWith(paint) {
    if (!presentSource.complete || !presentSource.naturalWidth) return;
    const marker = presentSource.cloneNode();
    const id = `${PRESENT}-${++presented}`;
    marker.setAttribute("elementtiming", id);
    marker.setAttribute("aria-hidden", "true");
    marker.alt = "";
    marker.style.cssText = "position: fixed; left: 0; top: 0; width: 1px; height: 1px; pointer-events: none; z-index: 2147483647";
    document.documentElement.appendChild(marker);
    presenting.set(id, { paint, marker });
    paint.awaitingPresentation = true;
    setTimeout(() => {
      if (!presenting.delete(id)) return;
      marker.remove();
      paint.awaitingPresentation = false;
      if (wake) wake();
    }, PRESENT_WAIT_MS);
  }
  function notePresented(entry) {
    const item = presenting.get(entry.identifier);
    if (!item) return;
    presenting.delete(entry.identifier);
    item.marker.remove();
    item.paint.awaitingPresentation = false;
    if (entry.renderTime > 0) {
      item.paint.t = Math.max(entry.renderTime, item.paint.drawnAt);
      item.paint.presented = true;
    }
  }
  // The image a draw paint drew, as a URL the runner can read: its own, or its pixels copied.
  function sourceOf(p, type) {
    if (!p) return null;
    if (p.src) return p.src;
    const copy = copies.get(p.copy);
    return copy ? copy.toDataURL(type, 0.9) : null;
  }
  const frameRequest = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = function (callback) {
    return frameRequest((t) => {
      insideFrameCallback = true;
      try {
        return callback(t);
      } finally {
        insideFrameCallback = false;
      }
    });
  };
  function wrap(proto, name, note) {
    const original = proto && proto[name];
    if (typeof original !== "function") return;
    proto[name] = function (...args) {
      const result = original.apply(this, args);
      try {
        note(this, args);
      } catch (e) {
        // never break the page's own drawing
      }
      return result;
    };
  }
  // Where drawImage put the picture, in the canvas's own pixels: its destination rectangle under
  // the context's transform (a node graph draws in graph coordinates, panned and zoomed), as the
  // bounding box of the transformed corners.
  function destination(context, args) {
    let [x, y, w, h] = args.length >= 9 ? args.slice(5, 9) : args.length >= 5 ? args.slice(1, 5) : [args[1], args[2], null, null];
    const m = context.getTransform ? context.getTransform() : null;
    if (!m || m.isIdentity) return [x, y, w, h];
    if (w === null || w === undefined) [w, h] = sizeOf(args[0]);
    const corners = [[x, y], [x + w, y], [x, y + h], [x + w, y + h]].map(([px, py]) => [m.a * px + m.c * py + m.e, m.b * px + m.d * py + m.f]);
    const xs = corners.map((c) => c[0]), ys = corners.map((c) => c[1]);
    return [Math.min(...xs), Math.min(...ys), Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)];
  }
  for (const proto of [CanvasRenderingContext2D.prototype, window.OffscreenCanvasRenderingContext2D && OffscreenCanvasRenderingContext2D.prototype]) {
    wrap(proto, "drawImage", (context, args) => noteDraw(context.canvas, args[0], "2d.drawImage", destination(context, args)));
    wrap(proto, "putImageData", (context, args) => noteDraw(context.canvas, args[0], "2d.putImageData", [args[1], args[2], null, null]));
  }
  for (const gl of [window.WebGLRenderingContext, window.WebGL2RenderingContext]) {
    for (const name of ["texImage2D", "texSubImage2D"]) {
      wrap(gl && gl.prototype, name, (context, args) => noteDraw(context.canvas, args[args.length - 1], `webgl.${name}`, null));
    }
  }
  wrap(window.GPUQueue && GPUQueue.prototype, "copyExternalImageToTexture", (queue, args) => {
    const canvases = regionCanvases(); // the texture's canvas is not known: the region's
    if (canvases.length === 1) noteDraw(canvases[0], args[0] && args[0].source, "webgpu.copyExternalImageToTexture", null);
  });
  const transfer = HTMLCanvasElement.prototype.transferControlToOffscreen;
  if (transfer) {
    HTMLCanvasElement.prototype.transferControlToOffscreen = function () {
      const offscreen = transfer.call(this);
      offscreenOwners.set(offscreen, this);
      return offscreen;
    };
  }
  // This action's last new picture drawn, its frame begun (the final of a canvas output): the
  // last drawn as a final, when draws are told apart.
  const drawnFinal = (a) => {
    const drawn = paints.filter((p) => p.method === "draw-call" && p.t !== null && p.t >= a.click && ofAction(a, p));
    return drawn.filter((p) => p.role === "final").pop() || drawn.pop() || null;
  };
  const drawPending = (a) => paints.some((p) => p.method === "draw-call" && (p.t === null || p.awaitingPresentation) && p.drawnAt >= a.click);

  function tagOutputImages() {
    for (const img of document.querySelectorAll(config.output + " img")) {
      if (!img.hasAttribute("elementtiming")) img.setAttribute("elementtiming", `${TAG}-${++tagged}`);
    }
  }
  // Which image a paint or an element is: its own tag, or (an image the page tagged itself) the element.
  const ours = (identifier) => typeof identifier === "string" && identifier.startsWith(TAG);
  const keyOf = (img) => (ours(img.getAttribute("elementtiming")) ? img.getAttribute("elementtiming") : img);
  // "hidden", "enabled" and "disabled" done conditions hold only after the opposite was seen
  // since the click (a spinner shown then hidden, a button disabled then enabled again, a Cancel
  // button enabled while the job runs and disabled again). Mutations are
  // checked as they happen, so a short-lived spinner is not missed between polls.
  function noteOpposites() {
    if (!action) return;
    for (const c of action.conditions) {
      if (c.kind === "hidden" && visible(document.querySelector(c.hidden))) c.seen = true;
      if (c.kind === "enabled" && !enabled(document.querySelector(c.enabled))) c.seen = true;
      if (c.kind === "disabled" && enabled(document.querySelector(c.disabled))) c.seen = true;
    }
  }
  // While paint times come from screencast frames, where the output region is on screen at
  // each moment (a spinner above it can push it down mid-action).
  function noteOutputBox() {
    if (!action || action.requireImage === true) return;
    const el = document.querySelector(config.output);
    if (!el) return;
    const r = el.getBoundingClientRect();
    const last = action.boxes[action.boxes.length - 1];
    if (!last || last.x !== r.x || last.y !== r.y || last.width !== r.width || last.height !== r.height) {
      action.boxes.push({ t: performance.now(), x: r.x, y: r.y, width: r.width, height: r.height });
    }
  }
  // whenDone() is woken by what can change the state (a mutation, a paint entry) as well as
  // by every animation frame, so it answers as soon as the state changes.
  let wake = null;
  new MutationObserver(() => {
    tagOutputImages();
    noteOpposites();
    noteOutputBox();
    if (wake) wake();
  }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true });

  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (typeof entry.identifier === "string" && entry.identifier.startsWith(PRESENT)) {
        notePresented(entry);
        continue;
      }
      if (!ours(entry.identifier) && !inOutput(entry.element)) continue;
      // renderTime is 0 for cross-origin images served without Timing-Allow-Origin; then only
      // the load time is known, and the method says so.
      // renderTime is the presentation time (pixels on screen); paintTime, where the browser
      // has it, is the rendering update that painted the image, one presentation earlier.
      const rendered = entry.renderTime > 0;
      // The full source of what was painted, kept so the runner can save each preview after the
      // action (entry.url cuts data: URLs to 100 characters); null when the element has moved on.
      const src = entry.element ? entry.element.currentSrc || entry.element.src : null;
      const content = entry.element && src && sameUrl(src, entry.url) ? contentOf(entry.element) : null;
      const t = rendered ? entry.renderTime : entry.loadTime;
      noteSeen(content, t);
      paints.push({
        t,
        method: rendered ? "element-timing" : "element-timing-load",
        paintTime: entry.paintTime ?? null,
        url: entry.url,
        key: ours(entry.identifier) ? entry.identifier : entry.element,
        src: src && sameUrl(src, entry.url) ? (src.startsWith("blob:") && copyOf(entry.element)) || src : null,
        content,
        role: roleOf(entry.element),
        finalOf: null,
      });
    }
    if (wake) wake();
  }).observe({ type: "element", buffered: true });

  function onTrustedInput(event) {
    if (!action || action.click !== null || !event.isTrusted) return;
    if (event.type === "keydown" && event.key !== "Enter") return;
    if (event.target instanceof Element && event.target.closest(action.control)) {
      action.click = event.timeStamp;
    }
  }
  window.addEventListener("click", onTrustedInput, true);
  window.addEventListener("keydown", onTrustedInput, true);


  function shownImage() {
    const imgs = [...document.querySelectorAll(config.output + " " + config.final_image)].filter(
      (img) => img.complete && img.naturalWidth > 0 && visible(img)
    );
    return imgs.length ? imgs[imgs.length - 1] : null;
  }

  function targetOf(img) {
    if (!img) return null;
    if (!img.hasAttribute("elementtiming")) tagOutputImages();  // inserted in this very task
    return { key: keyOf(img), url: img.currentSrc || img.src };
  }
  const sameTarget = (a, b) => a !== null && b !== null && a.key === b.key && a.url === b.url;

  // A paint that may be a preview or the final of action `a`: in a preview or final image, and
  // not of content the region showed before the click.
  const ofAction = (a, p) => p.role !== "other" && !oldFor(a, p);
  // Content the region showed before `a`'s click; a picture drawn from a URL not seen before
  // the click is new even when it looks the same (a deterministic product run again at the
  // seed of the result it showed: InvokeAI's canvas names each result's PNG anew).
  const oldFor = (a, p) =>
    shownBefore(p.content, a.click) && !(p.method === "draw-call" && p.src && !urlShownBefore(p.src, a));

  // The paint, after `a`'s click, of image `target` ({key, url}).
  function paintOf(a, target) {
    if (!target || a === null || a.click === null) return null;
    for (let i = paints.length - 1; i >= 0; i--) {
      const p = paints[i];
      if (p.t >= a.click && sameUrl(target.url, p.url) && (p.key === target.key || p.key === null)) return p;
    }
    return null;
  }

  // The paint, after the click, of the final-looking image the output region shows now.
  const shownImagePaint = () => paintOf(action, targetOf(shownImage()));
  // The action's final: the shown image's paint, or on a canvas output the last picture drawn.
  const finalOf = (a) => (!a ? null : a.requireImage === "drawn" ? drawnFinal(a) : a.requireImage === "either"
    ? shownImagePaint() || drawnFinal(a) : shownImagePaint());

  // A final-looking image is shown that was not shown at the click (another element or
  // source), or has painted since the click; and it is a picture the region did not show before
  // the click, or one that comes under a URL not seen before the click (the same black image of
  // a safety filter twice is two finals). The old final re-displayed under its own URL is no
  // final, even when the done conditions already hold (InvokeAI disables Cancel before its new
  // image is shown). A `repeat` of the same seed shows the same picture again by design.
  function newImageShown() {
    const img = shownImage();
    const target = targetOf(img);
    if (target === null || (sameTarget(target, action.before) && paintOf(action, target) === null)) return false;
    const content = action.sameContentExpected ? null : contentOf(img);
    if (content !== null) noteSeen(content, performance.now());
    return content === null || !shownBefore(content, action.click) || !urlShownBefore(target.url, action);
  }
  const urlShownBefore = (url, a) => a.urlsBefore.has(url) || paints.some((p) => p.t < a.click && sameUrl(url, p.url));

  const textOf = (selector) => {
    const el = document.querySelector(selector);
    return el ? el.innerText.trim() : null;
  };
  const changedText = (c) => {
    const text = textOf(c.selector);
    return text !== null && new RegExp(c.text_matches).test(text) && text !== action.textBefore[c.selector];
  };

  function holds(c) {
    switch (c.kind) {
      case "text":
        return changedText(c);
      case "hidden":
        return c.seen && !visible(document.querySelector(c.hidden));
      case "enabled":
        return c.seen && enabled(document.querySelector(c.enabled));
      case "disabled":
        return c.seen && !enabled(document.querySelector(c.disabled));
      case "visible":
        return visible(document.querySelector(c.visible));
      case "output_stable_ms": {
        const last = paints.filter((p) => p.t >= action.click && ofAction(action, p)).pop();
        return last !== undefined && performance.now() - last.t >= c.output_stable_ms;
      }
    }
    return false;
  }

  // Where a trusted mouse click on the control lands, when it can be clicked right now: present,
  // visible, enabled and not covered by anything else at its centre. Otherwise the reason, and
  // the runner lets Playwright's click wait until it can.
  function clickPoint(control) {
    const el = document.querySelector(control);
    if (!el) return { reason: "missing" };
    if (!visible(el) || !enabled(el)) return { reason: "not ready" };
    el.scrollIntoView({ block: "nearest", inline: "nearest" });
    const r = el.getBoundingClientRect();
    const x = r.left + r.width / 2;
    const y = r.top + r.height / 2;
    const hit = document.elementFromPoint(x, y);
    return hit && (hit === el || el.contains(hit)) ? { x, y } : { reason: "covered" };
  }

  // `shownIsEnough`: an image action timed by Element Timing is done ("shown") once its new
  // final is shown; its paint is collected later (takeSettled).
  // A canvas output is done once its done conditions hold and every picture drawn has its
  // frame, and then: when draws are told apart (roleOfDraw), once a final is drawn (a node graph
  // says "done", then loads and draws its final, seconds later on a busy machine); else once no
  // new picture has been drawn for DRAW_QUIET_MS. A UI that drew this action's previews as
  // previews is waited on for its final, unless the same picture is expected again (drawn
  // again, it is no new draw). The wait is the harness's: each paint's time is its own frame's.
  const DRAW_QUIET_MS = 300;
  function drawnDone() {
    const now = performance.now();
    if (action.heldAt === undefined) action.heldAt = now;
    if (drawPending(action)) return "pending";
    const drawn = paints.filter((p) => p.method === "draw-call" && p.drawnAt >= action.click);
    const mine = drawn.filter((p) => ofAction(action, p));
    if (mine.some((p) => p.role === "final")) return "done";
    if (mine.some((p) => p.role === "preview") && !action.sameContentExpected) return "pending";
    const quietSince = Math.max(action.heldAt, drawn.length ? drawn[drawn.length - 1].drawnAt : 0);
    return now - quietSince >= DRAW_QUIET_MS ? "done" : "pending";
  }

  function state(shownIsEnough = false) {
    if (action === null || action.click === null) return "pending";
    noteOpposites();
    if (action.error && changedText(action.error)) return "error: " + textOf(action.error.selector);
    if (!action.conditions.every(holds)) return "pending";
    if (action.requireImage === "drawn") return drawnDone(); // no picture drawn: the runner reads the frames
    if (action.requireImage === "either") {
      if (shownImagePaint()) return "done";
      return regionCanvases().length ? drawnDone() : "pending";
    }
    if (shownIsEnough && action.requireImage === true) return newImageShown() ? "shown" : "pending";
    return !action.requireImage || shownImagePaint() ? "done" : "pending";
  }

  function begin(name, control, conditions, error, requireImage, id = null, sameContentExpected = false) {
    const now = performance.now();
    for (const img of document.querySelectorAll(config.output + " img")) noteSeen(contentOf(img), now);
    const textBefore = {};
    for (const c of [...conditions, ...(error ? [error] : [])]) if (c.selector) textBefore[c.selector] = textOf(c.selector);
    action = { id, name, control, click: null, conditions: conditions.map((c) => ({ ...c, seen: false })), error, textBefore,
               requireImage, sameContentExpected, boxes: [], before: targetOf(shownImage()),
               urlsBefore: new Set([...document.querySelectorAll(config.output + " img")].map((i) => i.currentSrc || i.src)) };
    noteOutputBox();
  }

  // Everything the runner keeps about action `a` whose final painted as `final` (or, for the
  // current action, the shown image's paint), serialisable: paints from the click to the final,
  // another action's final excepted.
  function recordOf(a, final) {
    const click = a ? a.click : null;
    const mine = (p) => click !== null && p.t !== null && p.t >= click && (final === null || p.t <= final.t) &&
      (p.finalOf === null || p === final);
    return {
      name: a ? a.name : null,
      click,
      boxes: a ? a.boxes : [],
      final: final ? { t: final.t, method: final.method, paintTime: final.paintTime, url: final.url, content: final.content,
                       ...(final.method === "draw-call" ? { api: final.api, size: final.size, rect: final.rect } : {}) } : null,
      // `old`: content the region showed before the click (the audit counts no such paint).
      paints: paints.filter(mine)
        .map((p) => ({ t: p.t, method: p.method, paintTime: p.paintTime, url: p.url.slice(0, 200), content: p.content,
                       role: p.role, old: oldFor(a, p), ...(p.api ? { api: p.api, size: p.size, rect: p.rect, presented: Boolean(p.presented) } : {}) })),
    };
  }

  // Sources of the previews painted for action `a` (between click and final), at most `cap`,
  // evenly spread: the runner saves them after the action, outside its timing.
  function previewsOf(a, final, cap) {
    if (!a || a.click === null || !final) return [];
    const kept = new Set([final.content]);
    const previews = paints.filter((p) => {
      if (!(p.t !== null && p.t >= a.click && p.t < final.t && (p.src || p.copy) && p.finalOf === null && ofAction(a, p))) return false;
      if (p.content === null) return true;
      if (kept.has(p.content)) return false; // the final shown early, or one preview painted twice
      kept.add(p.content);
      return true;
    });
    const step = Math.max(1, previews.length / cap);
    const picked = [];
    for (let i = 0; i < previews.length && picked.length < cap; i += step) picked.push(previews[Math.floor(i)]);
    return picked.map((p) => ({ t: p.t, src: sourceOf(p, "image/jpeg") })).filter((p) => p.src);
  }

  // Unsettled actions whose final has painted since, oldest first: {id, record, previews}; one
  // whose deadline passed with no paint: {id, expired: true}. (Entries arrive in paint order:
  // when a later action's final has painted, an earlier final that has not never painted
  // before it, so it cannot be taken for a preview of the later one.)
  function takeSettled(cap) {
    const out = [];
    for (const a of [...unsettled]) {
      const final = paintOf(a, a.target);
      if (final) {
        final.finalOf = a.id;
        out.push({ id: a.id, record: recordOf(a, final), previews: previewsOf(a, final, cap) });
      } else if (performance.now() > a.deadline) {
        out.push({ id: a.id, expired: true });
      } else continue;
      unsettled.splice(unsettled.indexOf(a), 1);
    }
    return out;
  }

  // Resolves once check() gives something other than undefined, or with onTimeout() after
  // timeoutMs. Woken by mutations, paint entries and, with everyFrame, animation frames, and
  // polled every 100 ms (frames stop in a hidden page; the time limit must not). A wait asks
  // for no frame after it ends: a frame nobody needs runs its rendering update first and
  // delays the tasks queued behind it, the Element Timing entry among them.
  function waitFor(check, timeoutMs, onTimeout, everyFrame = true) {
    return new Promise((resolve) => {
      const started = performance.now();
      let raf = null;
      const test = () => {
        const answer = check();
        const late = performance.now() - started > timeoutMs;
        if (answer !== undefined || late) {
          wake = null;
          clearInterval(timer);
          if (raf !== null) cancelAnimationFrame(raf);
          resolve(answer !== undefined ? answer : onTimeout());
        }
      };
      const frame = () => {
        raf = null;
        if (wake !== test) return;
        test();
        if (wake === test) raf = requestAnimationFrame(frame);
      };
      wake = test;
      const timer = setInterval(test, 100);
      test();
      if (wake === test && everyFrame) raf = requestAnimationFrame(frame);
    });
  }

  const api = {
    regionCanvases, // for the runner's copy of a canvas final and the truth check
    // Start watching one action: its control, its done conditions and the error condition.
    // requireImage: false when paint times come from screencast frames (a <canvas> output);
    // "either" when both watch (an empty region at the click): an <img> painted, or a <canvas> there.
    // Selectors the probe matches in the page itself must be plain CSS (not Playwright's
    // :has-text, text= or >>): the ones the browser cannot parse, so the runner can say so.
    notCss(selectors) {
      return selectors.filter((selector) => {
        try {
          document.querySelector(selector);
          return false;
        } catch (e) {
          return true;
        }
      });
    },
    begin,
    // One round trip before an action: check the selectors the probe matches (plain CSS), decide
    // how paints are watched (paint: auto → "element-timing" when the region holds an <img>,
    // "screencast" when only a <canvas>, "both" when it is empty), start watching the action,
    // and say where a click on its control lands. requireImage: false when paint times come
    // from screencast frames; "either" when both watch (an <img> painted, or a <canvas> there).
    // First it waits until the actions `settleFirst` have settled, and hands them over: the next
    // click never comes before the last final's frame is on screen.
    async prepare({ id, name, control, conditions, error, paint, requireImage, selectors, cap, settleFirst, sameContentExpected }) {
      const bad = this.notCss(selectors);
      if (bad.length) return { notCss: bad[0] };
      const settled = await this.whenSettled(settleFirst, cap);
      const watch = paint !== "auto" ? paint
        : document.querySelector(config.output + " img") ? "element-timing"
        : regionCanvases().length ? "draw-calls" : "both";
      const needs = requireImage ?? { "element-timing": true, screencast: false, "draw-calls": "drawn", both: "either" }[watch];
      begin(name, control, conditions, error, needs, id, sameContentExpected);
      return { watch, point: clickPoint(control), settled };
    },
    // "pending", "done" (every done condition holds and, for images, the shown final has
    // painted since the click) or "error: <text>".
    state,
    // Resolves once the state is not "pending" (or with "timeout" after timeoutMs): {state},
    // and when done, what finish(cap) gives, in the same round trip.
    whenDone(timeoutMs, cap) {
      return waitFor(() => {
        const now = state();
        if (now === "pending") return undefined;
        return now === "done" ? { state: now, ...api.finish(cap) } : { state: now };
      }, timeoutMs, () => ({ state: "timeout" }));
    },
    // The same for an image action timed by Element Timing, which is done when its new final is
    // shown: {state: "shown", shown, timeOrigin, settled}. The action is then unsettled until its
    // final's paint arrives, at most timeoutMs from now.
    whenShown(timeoutMs, cap) {
      const deadline = performance.now() + timeoutMs;
      return waitFor(() => {
        const now = state(true);
        if (now === "pending") return undefined;
        if (now !== "shown") return { state: now };
        const shown = shownImage();
        unsettled.push({ ...action, target: targetOf(shown), deadline });
        return { state: now, shown: shown.currentSrc || shown.src, timeOrigin: performance.timeOrigin,
                 settled: takeSettled(cap) };
      }, timeoutMs, () => ({ state: "timeout" }));
    },
    // Resolves, with what takeSettled gave meanwhile, once none of the actions `ids` is unsettled
    // (each has settled or passed its deadline, or this document never saw it). Only paint
    // entries and the clock can change that, so it asks for no frames (each delayed the entry
    // by about 0.5 ms).
    whenSettled(ids, cap) {
      const settled = [];
      return waitFor(() => {
        settled.push(...takeSettled(cap));
        return unsettled.some((a) => ids.includes(a.id)) ? undefined : settled;
      }, Infinity, () => null, false);
    },
    // After the action, in one round trip: the record, the shown image's URL, the previews'
    // sources (at most `cap`) and performance.timeOrigin.
    finish(cap) {
      const final = finalOf(action);
      return { record: recordOf(action, final), previews: previewsOf(action, final, cap), timeOrigin: performance.timeOrigin,
               shown: final && final.method === "draw-call" ? sourceOf(final, "image/png") : this.shownImageUrl() };
    },
    // Everything the runner keeps about the current action, serialisable.
    collect: () => recordOf(action, finalOf(action)),
    // The done conditions hold (whether or not a new final has painted).
    conditionsHold: () => action !== null && action.click !== null && action.conditions.every(holds),
    clickTime: () => (action ? action.click : null),
    shownImageUrl() {
      const img = shownImage();
      return img ? img.currentSrc || img.src : null;
    },
  };
  window.__imagejourney = api;
})
