// A plain image-generation UI (no framework): each action shows three previews and a final,
// each as a new <img> with a blob: URL, while a spinner is shown. It keeps its own record of
// when each image was put on the page, for tests to compare with the probe.
const $ = (id) => document.getElementById(id);
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

async function show(canvas, kind) {
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const img = new Image();
  img.src = URL.createObjectURL(blob);
  img.className = kind;
  img.alt = kind;
  await img.decode();
  $("gallery").replaceChildren(img);
  const inserted = performance.now();
  requestAnimationFrame((frame) => window.groundTruth.push({ kind, url: img.src, inserted, frame }));
  return canvas;
}

async function run(seed) {
  $("busy").hidden = false;
  $("make").disabled = true;
  for (let step = 1; step <= 3; step++) {
    await sleep(150);
    await show(draw(seed, step), "preview");
  }
  await sleep(150);
  const final = await show(draw(seed, 99), "final");
  $("save").href = final.toDataURL("image/png");
  $("busy").hidden = true;
  $("make").disabled = false;
}

$("make").addEventListener("click", () => run(Number($("seed").value)));
$("again").addEventListener("click", () => {
  $("seed").value = Number($("seed").value) + 1;
  run(Number($("seed").value));
});
