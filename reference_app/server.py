"""`imagejourney serve` / `python -m imagejourney.reference_app`: the reference app on one port.

Gradio is mounted on a FastAPI app that also answers `GET /imagejourney/info` (model, device,
settings) so a run can record what it measured against, and `GET /imagejourney/jobs/{job}`
(the server's own times for a job; its number is in the status line).
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import signal
import socket
import sys
import tempfile
from pathlib import Path


class AppCannotStart(Exception):
    """One sentence saying why the app cannot start and what to do."""


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    # The default stays tiny until the trained portrait-world weights are committed.
    parser.add_argument(
        "--model",
        default="portrait-world",
        help="'portrait-world' (trained here with `imagejourney train-reference`, the default), "
        "'portrait-world-early' (an early checkpoint of it), 'tiny' (random weights) or a "
        "local diffusers directory",
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA in fp16 when available), cpu or cuda")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--guidance", type=float, default=0.0)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="jobs on the model at once (each a copy of the pipelines); the rest queue",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=16,
        help="jobs running or waiting at once; past this a new one is answered 'busy, try again'",
    )
    parser.add_argument(
        "--previews",
        choices=("live", "gradio"),
        default="live",
        help="how previews reach the page: live (JPEG over server-sent events) or gradio (image streaming)",
    )
    parser.add_argument(
        "--output",
        choices=("image", "canvas"),
        default="image",
        help="show the output as an image (default) or drawn on a canvas redrawn every frame, as a "
        "node-graph UI draws it",
    )
    parser.add_argument(
        "--preview-method",
        choices=("latent-rgb", "taesd"),
        default="latent-rgb",
        help="how previews are decoded: latent-rgb (linear, latent size) or taesd (a tiny learnt decoder, "
        "full size; portrait-world has its own)",
    )
    parser.add_argument("--taesd", help="a local AutoencoderTiny (TAESD) directory for previews (implies taesd)")
    parser.add_argument(
        "--hold-preview-ms", type=int, default=0, help="test mode: hold each preview this long before showing it"
    )
    parser.add_argument(
        "--hold-final-ms",
        type=int,
        default=0,
        help="test mode: show the final no earlier than this long after the request",
    )
    faults = parser.add_argument_group("fault injection (off by default; recorded in /imagejourney/info)")
    faults.add_argument("--fault-latency-ms", type=int, default=0, help="added before inference starts")
    faults.add_argument("--fault-error-rate", type=float, default=0.0, help="share of jobs that fail visibly")
    faults.add_argument("--fault-blank-rate", type=float, default=0.0, help="share of finals replaced by a black image")
    faults.add_argument("--fault-stall-rate", type=float, default=0.0, help="share of jobs that never show a final")
    faults.add_argument(
        "--fault-quality",
        type=float,
        default=0.0,
        help="share of jobs conditioned on a perturbed prompt (each attribute it names swapped for another): "
        "the image shows the wrong attributes",
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="seed of the fault draws")


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AppCannotStart(
                    f"port {port} on {host} is already in use; pass --port with a free port or stop what is using it"
                ) from None
            raise AppCannotStart(f"cannot listen on {host}:{port} ({exc.strerror})") from None


def serve(args, scratch: Path) -> None:
    rates = {
        "--fault-error-rate": args.fault_error_rate,
        "--fault-blank-rate": args.fault_blank_rate,
        "--fault-stall-rate": args.fault_stall_rate,
        "--fault-quality": args.fault_quality,
    }
    for flag, rate in rates.items():  # before the slow imports: a typo is told at once
        if not 0.0 <= rate <= 1.0:
            raise AppCannotStart(f"{flag} {rate:g} is not a share of jobs; use a number from 0 to 1")
    check_port_free(args.host, args.port)
    # Gradio keeps every upload and every image it serves in GRADIO_TEMP_DIR, by default a
    # /tmp/gradio shared by all users and never emptied: unless one is set, use this process's
    # own. Set before gradio is imported (it reads the variable then).
    os.environ.setdefault("GRADIO_TEMP_DIR", str(scratch / "gradio"))
    try:
        import gradio as gr
        import torch
        import uvicorn
        from fastapi import FastAPI, HTTPException
        from fastapi.responses import StreamingResponse

        from .app import LIVE_CSS, UPLOAD_MAX_BYTES, Faults, Holds, ReferenceApp, Settings, build_ui
        from .canvas_output import CANVAS_CSS, CANVAS_JS
        from .live import LIVE_JS, LiveChannels
        from .pipeline import ModelNotAvailable, load_model, warm_up
    except ImportError as exc:
        raise AppCannotStart(
            f"the reference app needs the Python package '{exc.name}', which is not installed; run ./setup.sh"
        ) from None

    defaults = Settings.from_ui(args.steps, args.size, args.guidance)
    if isinstance(defaults, str):
        raise AppCannotStart(f"invalid default setting: {defaults}")
    try:
        model = load_model(args.model, args.device, args.taesd, args.preview_method)
    except ModelNotAvailable as exc:
        raise AppCannotStart(str(exc)) from None
    if not 1 <= args.concurrency <= 16:
        raise AppCannotStart(f"--concurrency {args.concurrency} is out of range; use 1 to 16")
    if not args.concurrency <= args.max_jobs <= 1024:
        raise AppCannotStart(
            f"--max-jobs {args.max_jobs} is out of range; use --concurrency ({args.concurrency}) to 1024"
        )
    warm_up(model, defaults.size)
    holds = Holds(preview_ms=args.hold_preview_ms, final_ms=args.hold_final_ms)
    faults = Faults(
        latency_ms=args.fault_latency_ms,
        error_rate=args.fault_error_rate,
        blank_rate=args.fault_blank_rate,
        stall_rate=args.fault_stall_rate,
        quality_rate=args.fault_quality,
        seed=args.fault_seed,
    )
    channels = LiveChannels() if args.previews == "live" else None
    reference = ReferenceApp(
        model,
        defaults,
        holds,
        faults,
        concurrency=args.concurrency,
        live=channels,
        max_jobs=args.max_jobs,
        export_dir=scratch / "exports",
    )

    api = FastAPI()

    @api.get("/imagejourney/info")
    def info():
        return {
            "app": "imagejourney reference app",
            "model": model.name,
            "random_weights": model.random_weights,
            "device": model.device,
            "dtype": model.dtype,
            "gpu": torch.cuda.get_device_name() if model.device == "cuda" else None,
            "sampler": model.sampler,
            "previews": model.preview_method,
            "concurrency": args.concurrency,
            "preview_delivery": args.previews,
            "defaults": {"steps": defaults.steps, "size": defaults.size, "guidance": defaults.guidance},
            "holds": {"preview_ms": holds.preview_ms, "final_ms": holds.final_ms},
            "faults": vars(faults) if faults.active() else None,
        }

    @api.get("/imagejourney/jobs/{job}")
    def job_times(job: int):
        """Server-side times of one job (epoch ms): request received, inference start and end,
        each preview produced, final produced, export written."""
        if job not in reference.jobs:
            raise HTTPException(status_code=404, detail=f"no job {job} (the app keeps the last {reference.KEPT_JOBS})")
        return reference.jobs[job]

    if channels:

        @api.get("/imagejourney/live")
        async def live(session: str):
            """Live previews for one Gradio session, as server-sent events, to one watcher: the
            tab that owns the session connects first, and no other client may then listen in."""
            if not channels.claim(session):
                raise HTTPException(status_code=409, detail="this session's previews are already being watched")
            return StreamingResponse(channels.stream(session), media_type="text/event-stream")

    scripts = ([LIVE_JS] if channels else []) + ([CANVAS_JS] if args.output == "canvas" else [])
    app = gr.mount_gradio_app(
        api,
        build_ui(reference, args.output),
        path="/",
        css=LIVE_CSS + (CANVAS_CSS if args.output == "canvas" else ""),
        js=f"() => {{ {' '.join(f'({script})();' for script in scripts)} }}" if scripts else None,
        max_file_size=f"{UPLOAD_MAX_BYTES // 2**20}mb",
    )  # refused by the server, not only the app
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"reference app: warning: listening on {args.host}, not loopback: anyone who can reach this host can "
            "use the app, its uploads and its exports",
            file=sys.stderr,
            flush=True,
        )
    print(f"reference app: http://{args.host}:{args.port}/ (model {model.name} on {model.device})", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5)


def run(args) -> int:
    """Serve until stopped; a reason not to start is one line on stderr and exit status 2."""
    scratch = Path(tempfile.mkdtemp(prefix="imagejourney-serve-"))  # exports and Gradio's uploads

    def stop(signum, frame):
        """SIGTERM or Ctrl-C: uvicorn has shut down (it raises the signal again once done), or the
        app was still starting. Jobs still running (a stalled one for 10 minutes) would hold up a
        normal exit, and atexit with it: remove the temporary files now and leave quietly."""
        shutil.rmtree(scratch, ignore_errors=True)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    try:
        serve(args, scratch)
    except AppCannotStart as exc:
        print(f"imagejourney serve: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imagejourney serve", description="Run the reference app.")
    add_serve_arguments(parser)
    return run(parser.parse_args(argv))
