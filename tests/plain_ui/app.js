// A plain image-generation UI (no framework): each action shows three previews and a final
// while a spinner is shown. How it shows an image depends on ?mode=:
//   new-img (default)  a new <img> per image, with a blob: URL
//   swap-data          one <img> whose src is swapped to a data: URL
//   canvas             drawn on one <canvas> (no <img> at all)
// After the test login, which hands the page a storage signature in its URL, every image is
// fetched by a signed URL (tile.png?n=…&sig=…), as from signed cloud storage.
//   canvas-dim         a canvas that dims what it shows from the click until the first preview
//   canvas-veil        a translucent veil over the canvas from the click until after the final
//   canvas-spinner     a small spinner turning over the canvas while it works
//   canvas-late        no canvas until the first preview is drawn
//   canvas-paint       a canvas whose pixels are painted with fillRect, no image source (as a shader would)
//   canvas-same        canvas, but every final is the same picture (tile.png) under a URL of its own
//                      (tile.png?n=…), as a deterministic product run again at the same seed names its result anew
//   graph              one 480×320 canvas redrawn every frame, as a node graph is: node boxes, a highlight
//                      around the running node, a progress bar and a moving cursor trail, and the current
//                      picture drawn (drawImage) inside the output node
//   graph-late-final   graph, its pictures <img>s as ComfyUI's classic canvas draws them (previews blob:
//                      URLs, the final a data: URL) and the UI says done 700 ms before it draws the final
//   graph-apart        graph, its previews drawn (scaled) in the running node, as ComfyUI's KSampler shows
//                      them, and its final in the output node
//   graph-wide         graph-apart on a 1100-px-wide canvas whose nodes lie 620 px from its left edge
//   webgl              a WebGL canvas: each picture uploaded as a texture (texImage2D) and drawn as a quad
//   stage-pan          a 400×300 stage, as InvokeAI's Canvas tab is: a checkerboard and a dashed box the
//                      picture is drawn into. 30 ms after each click the box shows "Waiting for Image"
//                      instead of its picture; the first preview comes at 400 ms. 50 ms after a fresh
//                      page's first click the stage re-centres (everything on it moves 70 px left and
//                      40 px up) and the region itself moves 105 px right, as a panel beside it closes
//   final-off-view     new-img, but the final is put far below the viewport, where it is never painted
//   final-svg          new-img, but the final is an SVG, which the runner cannot keep as a PNG
//   final-revoked      new-img, but the UI says done as the final comes, and the final's blob: URL is
//                      revoked once it is shown
//   reroll-covered     new-img, but a banner covers the reroll button once the first image is done
//   remount            new-img, but 50 ms after each click the UI re-renders: the previous final is
//                      removed and put back as a new <img> with a new blob: URL of the same picture
//   remount-done-early remount, the previews shown over the old final, which stays, and the UI says done
//                      (spinner hidden, Make enabled) before its new final is shown, as InvokeAI does
//   history            new-img, and the region also keeps a strip of earlier finals (thumbnails),
//                      drawn again as new <img>s after each click, as a queue sidebar does; the
//                      new final's thumbnail joins the strip before the final itself is shown
// With ?stall=once its first action (stall=second: its second) never finishes (a stalled job: the spinner stays, Make stays
// disabled) until the page is reloaded or Stop is clicked; with &logout that stall also ends the
// session, so a reload lands on the login page.
// It keeps its own record of when each image was put on the page, for tests to compare with.
const $ = (id) => document.getElementById(id);
const PARAMS = new URLSearchParams(location.search);
const MODE = PARAMS.get("mode") || "new-img";
if (PARAMS.get("image_sig")) sessionStorage.setItem("image_sig", PARAMS.get("image_sig"));
const SIGNATURE = sessionStorage.getItem("image_sig");
let served = 0;
window.groundTruth = [];
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function draw(seed, step) {
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 96;
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < 64; i++) {
    const v = (seed * 7919 + i * 104729 + step * 1299709) % 360;
    ctx.fillStyle = `hsl(${v}, 70%, ${30 + (i % 5) * 10}%)`;
    ctx.fillRect((i % 8) * 12, Math.floor(i / 8) * 12, 12, 12);
  }
  return canvas;
}

// Where the current image goes: the region itself, or (history) a stage above the strip.
const stage = () => (MODE === "history" ? $("stage") : $("gallery"));
const finals = []; // history: the canvases of earlier finals
if (MODE === "history") $("gallery").innerHTML = '<div id="stage"></div><div id="strip"></div>';

async function blobImage(canvas, className) {
  const img = new Image();
  img.src = URL.createObjectURL(await new Promise((resolve) => canvas.toBlob(resolve, "image/png")));
  img.className = className;
  await img.decode();
  return img;
}

async function remountFinal() { // the old final, as a new element (remount: under a new URL; InvokeAI-like: its own)
  const old = stage().querySelector("img.final");
  if (!old) return;
  let again = await blobImage(finals[finals.length - 1], "final");
  if (MODE === "remount-done-early") {
    again = new Image();
    again.className = "final";
    again.src = old.src;
    await again.decode();
  }
  stage().replaceChildren(again);
}

async function redrawStrip(extra = null) {
  const shown = extra ? [...finals, extra] : finals;
  $("strip").replaceChildren(...(await Promise.all(shown.map((c) => blobImage(c, "thumb")))));
}

const CANVAS_MODES = ["canvas", "canvas-dim", "canvas-veil", "canvas-spinner", "canvas-late", "canvas-paint", "canvas-same", "graph", "graph-late-final", "graph-apart", "graph-wide", "webgl", "stage-pan"];
let current = null; // graph: the picture the output node shows
let sampling = null; // graph-apart, graph-wide: the last preview, which the sampler node shows
const APART = MODE === "graph-apart" || MODE === "graph-wide";
const NODES_X = MODE === "graph-wide" ? 620 : 0; // graph-wide: the nodes' distance from the canvas's left edge
let progress = 0; // graph: the running node's progress bar, 0–1
let view = { x: 0, y: 0 }; // stage-pan: where the stage's origin is on the canvas
let panned = false; // stage-pan: whether this page has re-centred its stage

function drawStage() {  // stage-pan: the whole stage (a grid, marks, the box), at the view's offset
  const ctx = $("gallery").querySelector("canvas").getContext("2d");
  ctx.save();
  ctx.translate(view.x, view.y);
  for (let y = -160; y < 460; y += 16) {
    for (let x = -160; x < 560; x += 16) {
      ctx.fillStyle = ((x + y) / 16) % 2 ? "#2a2a2a" : "#3a3a3a";
      ctx.fillRect(x, y, 16, 16);
    }
  }
  for (let i = 0; i < 40; i++) {
    ctx.fillStyle = i % 2 ? "#5a5a9a" : "#9a5a5a";
    ctx.fillRect(60 + (i % 8) * 37, 20 + Math.floor(i / 8) * 53, 11, 7);
  }
  ctx.setLineDash([6, 4]);
  ctx.strokeStyle = "#e0e0e0";
  ctx.strokeRect(178, 118, 100, 100);
  if (current) ctx.drawImage(current, 180, 120);
  else if (!$("busy").hidden) {
    ctx.fillStyle = "#1c1c1c";
    ctx.fillRect(184, 124, 80, 14);
    ctx.fillStyle = "#d0d0d0";
    ctx.font = "10px sans-serif";
    ctx.fillText("Waiting for Image", 188, 135);
  }
  ctx.restore();
}
window.drawnPictures = []; // every picture shown, as PNG data URLs: what the kept images must equal

function drawGraph(t) {
  const ctx = $("gallery").querySelector("canvas").getContext("2d");
  ctx.fillStyle = "#202020";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
  ctx.save();
  ctx.translate(NODES_X, 0);
  for (const [x, y] of [[20, 40], [20, 180], [180, 110]]) {
    ctx.fillStyle = "#353535";
    ctx.fillRect(x, y, 130, 90);
  }
  if (!$("busy").hidden) {  // the running node: highlighted, with its progress bar
    ctx.strokeStyle = "#7fff7f";
    ctx.lineWidth = 3;
    ctx.strokeRect(178, 108, 134, 94);
    ctx.fillStyle = "#4caf50";
    ctx.fillRect(180, 196, 130 * progress, 6);
  }
  ctx.fillStyle = "#353535";
  ctx.fillRect(340, 100, 120, 120);
  if (sampling) {  // graph-apart, graph-wide: the sampler node's preview, scaled into the node
    ctx.save();
    ctx.translate(180, 110);
    ctx.drawImage(sampling, 33, 13, 64, 64);
    ctx.restore();
  }
  if (current) {  // the output node's picture, every frame, drawn in the node's coordinates as LiteGraph does
    ctx.save();
    ctx.translate(340, 100);
    ctx.drawImage(current, 12, 12);
    ctx.restore();
  }
  ctx.fillStyle = "rgba(255,255,255,0.5)";  // a cursor trail that never stops moving
  for (let i = 0; i < 5; i++) ctx.fillRect(200 + 100 * Math.sin(t / 300 - i / 5), 20 + i * 3, 6, 6);
  ctx.restore();
  requestAnimationFrame(drawGraph);
}

function webglShow(canvas) {
  const gl = $("gallery").querySelector("canvas").getContext("webgl", { preserveDrawingBuffer: true });
  if (!gl.program) {
    const shader = (type, source) => {
      const s = gl.createShader(type);
      gl.shaderSource(s, source);
      gl.compileShader(s);
      return s;
    };
    const program = gl.createProgram();
    gl.attachShader(program, shader(gl.VERTEX_SHADER, "attribute vec2 p; varying vec2 uv; void main() { uv = (p + 1.0) / 2.0; uv.y = 1.0 - uv.y; gl_Position = vec4(p, 0, 1); }"));
    gl.attachShader(program, shader(gl.FRAGMENT_SHADER, "precision mediump float; varying vec2 uv; uniform sampler2D t; void main() { gl_FragColor = texture2D(t, uv); }"));
    gl.linkProgram(program);
    gl.useProgram(program);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    gl.bindTexture(gl.TEXTURE_2D, gl.createTexture());
    for (const [k, v] of [[gl.TEXTURE_MIN_FILTER, gl.NEAREST], [gl.TEXTURE_MAG_FILTER, gl.NEAREST],
                          [gl.TEXTURE_WRAP_S, gl.CLAMP_TO_EDGE], [gl.TEXTURE_WRAP_T, gl.CLAMP_TO_EDGE]]) gl.texParameteri(gl.TEXTURE_2D, k, v);
    gl.program = program;
  }
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, gl.RGBA, gl.UNSIGNED_BYTE, canvas);
  gl.drawArrays(gl.TRIANGLE_STRIP, 0, 4);
}

async function show(canvas, kind) {
  if (CANVAS_MODES.includes(MODE)) {
    if (!$("gallery").querySelector("canvas")) $("gallery").replaceChildren(screenCanvas());
    const screen = $("gallery").querySelector("canvas");
    screen.style.filter = "";  // canvas-dim: the dimming ends as the picture arrives
    window.drawnPictures.push(canvas.toDataURL("image/png"));
    if (MODE === "graph") current = canvas;  // drawn with the next frame
    else if (MODE === "stage-pan") {
      current = canvas;
      drawStage();
    }
    else if (APART && kind === "preview") sampling = canvas;
    else if (APART) current = canvas;
    else if (MODE === "graph-late-final") current = await graphImage(canvas, kind);
    else if (MODE === "webgl") webglShow(canvas);
    else if (MODE === "canvas-paint") paintDirectly(screen.getContext("2d"), canvas);
    else if (MODE === "canvas-same" && kind === "final") {
      const tile = new Image();
      tile.src = `tile.png?n=${++served}`;
      await tile.decode();
      screen.getContext("2d").drawImage(tile, 0, 0, 96, 96);
    }
    else screen.getContext("2d").drawImage(canvas, 0, 0);
    record(kind, "");
    return canvas;
  }
  const img = MODE === "swap-data" ? $("gallery").querySelector("img") || new Image() : new Image();
  if (SIGNATURE) img.src = `tile.png?n=${++served}&sig=${SIGNATURE}`;
  else if (MODE === "final-svg" && kind === "final") img.src = "data:image/svg+xml," + encodeURIComponent(
    `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="hsl(${served++ * 47 % 360}, 60%, 40%)"/></svg>`);
  else img.src = MODE === "swap-data" ? canvas.toDataURL("image/png")
    : URL.createObjectURL(await new Promise((resolve) => canvas.toBlob(resolve, "image/png")));
  img.className = kind;
  img.alt = kind;
  if (MODE === "final-off-view" && kind === "final") img.style.cssText = "position: absolute; top: 30000px";
  await img.decode();
  if (MODE === "remount-done-early" && kind === "preview") {  // over the old final, which stays shown
    stage().querySelectorAll("img.preview").forEach((shown) => shown.remove());
    stage().append(img);
  } else if (!img.isConnected) stage().replaceChildren(img);
  if (MODE === "final-revoked" && kind === "final") URL.revokeObjectURL(img.src);
  record(kind, img.src);
  return canvas;
}

async function graphImage(canvas, kind) {  // graph-late-final: the picture as an <img>, as LiteGraph keeps it
  if (kind === "preview") return blobImage(canvas, "preview");
  const img = new Image();
  img.src = canvas.toDataURL("image/png");
  await img.decode();
  return img;
}

function screenCanvas() {
  const screen = document.createElement("canvas");
  screen.width = MODE === "stage-pan" ? 400 : MODE.startsWith("graph") ? 480 + NODES_X : 96;
  screen.height = MODE === "stage-pan" ? 300 : MODE.startsWith("graph") ? 320 : 96;
  return screen;
}

function paintDirectly(ctx, canvas) {  // the picture's pixels, painted block by block: no image source
  const pixels = canvas.getContext("2d").getImageData(0, 0, 96, 96).data;
  for (let y = 0; y < 96; y += 12) {
    for (let x = 0; x < 96; x += 12) {
      const i = (y * 96 + x) * 4;
      ctx.fillStyle = `rgb(${pixels[i]}, ${pixels[i + 1]}, ${pixels[i + 2]})`;
      ctx.fillRect(x, y, 12, 12);
    }
  }
}

if (CANVAS_MODES.includes(MODE) && MODE !== "canvas-late") {  // a canvas UI shows its canvas from the start
  $("gallery").style.position = "relative";
  $("gallery").replaceChildren(screenCanvas());
  if (MODE.startsWith("graph")) {
    current = draw(0, 0);  // a placeholder picture
    requestAnimationFrame(drawGraph);
  } else if (MODE === "webgl") webglShow(draw(0, 0));
  else if (MODE === "stage-pan") drawStage();
  else if (MODE !== "canvas") $("gallery").querySelector("canvas").getContext("2d").drawImage(draw(0, 0), 0, 0);  // a placeholder picture
}

function setWorking(on) {  // what the canvas modes show while they work
  const screen = $("gallery").querySelector("canvas");
  if (MODE === "canvas-dim" && on && screen) screen.style.filter = "brightness(0.45)";
  if (MODE === "canvas-veil" || MODE === "canvas-spinner") {
    let cover = $("cover");
    if (on && !cover) {
      cover = document.createElement("div");
      cover.id = "cover";
      cover.style.cssText = MODE === "canvas-veil"
        ? "position:absolute;left:0;top:0;width:96px;height:96px;background:rgba(255,255,255,0.6)"
        : "position:absolute;left:40px;top:40px;width:12px;height:12px;background:#333;animation:turn .3s linear infinite";
      $("gallery").append(cover);
    }
    if (!on && cover) cover.remove();
  }
}
document.head.insertAdjacentHTML("beforeend", "<style>@keyframes turn { to { transform: rotate(360deg); } }</style>");

function record(kind, url) {
  const inserted = performance.now();
  requestAnimationFrame((frame) => window.groundTruth.push({ kind, url: url.slice(0, 60), inserted, frame }));
}

let runs = 0;

function stopWorking() {
  setWorking(false);
  $("busy").hidden = true;
  $("make").disabled = false;
  $("stop").hidden = true;
}
$("stop").addEventListener("click", stopWorking);

async function run(seed) {
  runs = (Number(sessionStorage.getItem("runs")) || 0) + 1;
  sessionStorage.setItem("runs", runs);
  const stallNow = { once: runs === 1, second: runs === 2 }[PARAMS.get("stall")];
  if (stallNow && !sessionStorage.getItem("stalled")) {
    sessionStorage.setItem("stalled", "yes");
    if (PARAMS.has("logout")) document.cookie = "session=; max-age=0; path=/";
    $("busy").hidden = false;
    $("make").disabled = true;
    $("stop").hidden = false;
    return;  // never finishes
  }
  if (MODE === "remount" || MODE === "remount-done-early") setTimeout(remountFinal, 50);
  if (MODE === "history") redrawStrip();
  $("busy").hidden = false;
  $("make").disabled = true;
  setWorking(true);
  if (MODE === "stage-pan") {
    setTimeout(() => {
      current = null;
      drawStage();
    }, 30);
    if (!panned) {
      panned = true;
      setTimeout(() => {
        view = { x: -70, y: -40 };
        $("gallery").style.marginLeft = "105px";
        drawStage();
      }, 50);
    }
  }
  for (let step = 1; step <= 3; step++) {
    progress = step / 4;
    await sleep(MODE === "stage-pan" && step === 1 ? 400 : 150);
    await show(draw(seed, step), "preview");
  }
  await sleep(150);
  const idle = () => {
    setWorking(false);
    $("busy").hidden = true;
    $("make").disabled = false;
  };
  if (MODE === "final-revoked" || MODE === "remount-done-early") idle();  // done before the final comes
  if (MODE === "graph-late-final") {  // done, then the final is fetched and drawn
    idle();
    await sleep(700);
  }
  if (MODE === "history") await redrawStrip(draw(seed, 99));
  const final = await show(draw(seed, 99), "final");
  finals.push(final);
  $("save").href = final.toDataURL("image/png");
  await sleep(60);  // the veil or spinner goes away a little after the final: that is not a paint
  if (MODE === "reroll-covered") coverReroll();
  idle();
}

function coverReroll() {
  const r = $("again").getBoundingClientRect();
  const banner = document.createElement("div");
  banner.style.cssText = `position:fixed;left:${r.left - 4}px;top:${r.top - 4}px;width:${r.width + 8}px;` +
    `height:${r.height + 8}px;background:#fc0`;
  document.body.append(banner);
}

$("make").addEventListener("click", () => run(Number($("seed").value)));
$("again").addEventListener("click", () => {
  $("seed").value = Number($("seed").value) + 1;
  run(Number($("seed").value));
});
