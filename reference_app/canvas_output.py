"""`--output canvas`: the reference app shows its output on a <canvas>, drawn as a node-graph UI
(ComfyUI's LiteGraph) draws it: the whole canvas redrawn every frame, node boxes, a highlight
and a progress bar on the running node, a cursor trail that never stops, and the current picture
(the live preview while one is shown, else the Gradio output image) drawn inside the output node.
The Gradio output stays in the page, out of view, as the source the canvas draws from. So the
canvas path of the probe (draw calls) runs against a real product under test.
"""

CANVAS_HTML = '<canvas id="output-canvas" width="480" height="360" aria-label="output"></canvas>'

CANVAS_CSS = """
#output-area { position: absolute !important; left: -10000px; top: 0; width: 512px; }
#canvas-area canvas { display: block; max-width: 100%; }
"""

CANVAS_JS = """
() => {
  const W = 480, H = 360, picture = { x: 300, y: 110, size: 160 };
  const loaded = new Map();  // src → an Image of it: the page's own output <img> is out of view, and lazy
  const load = (src) => {
    if (!loaded.has(src)) {
      const image = new Image();
      image.src = src;
      loaded.set(src, image);
    }
    const image = loaded.get(src);
    return image.complete && image.naturalWidth ? image : null;
  };
  let last = null;
  function source() {  // the live preview while one is shown, else the output image
    const live = document.querySelector("#live-preview img");
    const output = document.querySelector("#output img");
    const src = live && live.style.display === "block" ? live.src : output ? output.src : null;
    last = (src && load(src)) || last;
    return last;
  }
  function frame(t) {
    const canvas = document.getElementById("output-canvas");
    if (canvas) {
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#1e1e1e";
      ctx.fillRect(0, 0, W, H);
      ctx.strokeStyle = "#444";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.moveTo(150, 90); ctx.bezierCurveTo(200, 90, 200, 150, 240, 150);
      ctx.moveTo(150, 230); ctx.bezierCurveTo(200, 230, 200, 170, 240, 170);
      ctx.stroke();
      for (const [x, y, w, h, title] of [[20, 50, 130, 80, "Prompt"], [20, 190, 130, 80, "Settings"],
                                         [240, 110, 50, 100, "Sampler"], [292, 80, 176, 200, "Output"]]) {
        ctx.fillStyle = "#353535";
        ctx.fillRect(x, y, w, h);
        ctx.fillStyle = "#bbb";
        ctx.font = "12px sans-serif";
        ctx.fillText(title, x + 6, y + 14);
      }
      const status = (document.querySelector("#status") || {}).innerText || "";
      const step = status.match(/step (\\d+)\\/(\\d+)/);
      if (status.trim().startsWith("Working")) {  // the running node: highlighted, with its progress bar
        ctx.strokeStyle = "#7fff7f";
        ctx.lineWidth = 3;
        ctx.strokeRect(238, 108, 54, 104);
        ctx.fillStyle = "#4caf50";
        ctx.fillRect(240, 204, 50 * (step ? Number(step[1]) / Number(step[2]) : 0.1), 5);
      }
      const image = source();
      if (image) {
        const scale = picture.size / Math.max(image.naturalWidth, image.naturalHeight);
        ctx.drawImage(image, picture.x, picture.y, image.naturalWidth * scale, image.naturalHeight * scale);
      }
      ctx.fillStyle = "rgba(255, 255, 255, 0.5)";  // a cursor trail
      for (let i = 0; i < 5; i++) ctx.fillRect(200 + 120 * Math.sin(t / 400 - i / 6), 20 + i * 3, 6, 6);
    }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
}
"""
