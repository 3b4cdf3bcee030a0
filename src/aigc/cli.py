"""`aigc ...` sub-commands: argument parsing and calls into the Python API, nothing more."""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from .errors import ConfigError, UserError, closest
from .files import check_output_file, check_output_folder

DEVICE_HELP = "where samples are drawn: cpu (default), auto (a GPU when there is one), cuda, cuda:N or mps"
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage mistake as one line (exit 2) with a suggestion."""

    def error(self, message: str) -> None:  # type: ignore[override]
        m = re.search(r"unrecognized arguments: (\S+)", message)
        if m:
            flag = m.group(1).split("=")[0]
            opts = [o for o in self._all_options() if o != flag]  # an option of another command is no fix
            guess = closest(flag, opts)
            if guess:
                message += f" (did you mean {guess}?)"
        m = re.search(r"invalid choice: '([^']+)'", message)
        if m and self._subparsers is not None:
            choices = [c for a in self._subparsers._group_actions for c in (a.choices or {})]
            guess = closest(m.group(1), choices)
            message = f"unknown command '{m.group(1)}'" + (f" (did you mean '{guess}'?)" if guess else "")
        print(f"error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)

    def _all_options(self) -> list[str]:
        """Option strings of this parser and all its sub-parsers (unknown options surface at the top)."""
        opts = [o for a in self._actions for o in a.option_strings]
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    opts += sub._all_options()
        return opts


# ---------------------------------------------------------------- commands

def cmd_recipes(args: argparse.Namespace) -> int:
    import yaml

    from .config import recipe_names, recipe_text

    for name in recipe_names():
        data = yaml.safe_load(recipe_text(name)) or {}
        desc = str(data.get("description", "")).strip().splitlines()
        print(f"{name:24s} {desc[0] if desc else ''}")
    return 0


def _train_config(args: argparse.Namespace):
    from .config import load_config
    from .run import read_run_config

    overrides = list(args.set or [])
    if args.steps is not None:
        overrides.append(f"train.steps={args.steps}")
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    if args.spec is None:
        if not (args.resume and args.out and (Path(args.out) / "config.yaml").is_file()):
            raise ConfigError("no recipe or config given", "e.g. `aigc train fashion-gan`; see `aigc recipes`")
        return load_config(read_run_config(Path(args.out)).to_dict(), overrides)
    return load_config(args.spec, overrides)


def _run_dir(cfg: Any, args: argparse.Namespace) -> Path:
    if args.out:
        return Path(args.out)
    if not RUN_NAME.match(cfg.name):
        raise ConfigError(f"run name '{cfg.name}' is not a plain folder name",
                          "use letters, digits, '.', '_' and '-' only, or give --out")
    return Path("runs") / cfg.name


def _launch(args: argparse.Namespace) -> int:
    """--nproc N: check the command here (one line on a mistake, before any process starts), then run
    it again under torchrun in N processes, without --nproc and --max-restarts."""
    from .train.distributed import World, check_batch, launch

    if not 1 <= args.nproc <= 1024:
        raise ConfigError(f"--nproc is {args.nproc}", "use 1 to the number of processes this machine can run, e.g. 2")
    if args.max_restarts is not None and not 0 <= args.max_restarts <= 100:
        raise ConfigError(f"--max-restarts is {args.max_restarts}", "use 0 to 100")
    from .train.loop import check_run_dir

    cfg = _train_config(args)  # what the processes would refuse, refused here before any starts
    check_batch(cfg.train.batch_size, World(size=args.nproc))
    check_run_dir(_run_dir(cfg, args), cfg, args.resume)
    rest, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a in ("--nproc", "--max-restarts"):
            skip = True
        elif not a.startswith(("--nproc=", "--max-restarts=")):
            rest.append(a)
    return launch(rest, args.nproc, args.max_restarts or 0)


def cmd_train(args: argparse.Namespace) -> int:
    import os

    from .train import train

    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        return _launch(args)
    if args.max_restarts is not None and "WORLD_SIZE" not in os.environ:
        raise ConfigError("--max-restarts needs --nproc N", "e.g. --nproc 2 --max-restarts 3 (or torchrun's own flag)")
    cfg = _train_config(args)
    if args.quiet:
        cfg.train.progress = False
    out = _run_dir(cfg, args)
    echo = (lambda m: None) if args.quiet else print
    data = evaluator = None
    if cfg.train.eval_every > 0 and os.environ.get("RANK", "0") == "0":  # rank 0 evaluates for a job of several
        # the cheap in-training evaluation marks checkpoints/best.json
        from .data import load_dataset
        from .metrics import training_evaluator

        data = load_dataset(cfg.data)
        evaluator = training_evaluator(cfg, data, echo=echo)
    result = train(cfg, out, resume=args.resume, data=data, evaluator=evaluator, echo=echo)
    if not args.quiet and os.environ.get("RANK", "0") == "0":  # rank 0 speaks for a job of several
        shown = [p.name + ("/" if p.is_dir() else "") for p in sorted(Path(result.run_dir).glob("samples*"))]
        print(f"run saved in {result.run_dir}: {', '.join(shown + ['curves.png', 'report.md', 'checkpoints/'])}")
    return 128 + (result.signal or 2) if result.interrupted else 0  # 130 for Ctrl-C, 143 for SIGTERM


def sample_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options the user set, by the names of the families' SampleOptions fields.

    `aigc.load(run).sample()` checks them against the run's family, so a wrong one gets the same
    one-line error here as through the Python API.
    """
    opts: dict[str, Any] = {}
    if args.label:
        opts["labels"] = args.label
    if args.no_ema:
        opts["ema"] = False
    for key in ("temperature", "top_k", "top_p", "prompt", "max_len", "sampler", "guidance", "bars", "prompt_bars",
                "key", "max_copy_bars"):
        if getattr(args, key) is not None:
            opts[key] = getattr(args, key)
    if args.sample_steps is not None:
        opts["steps"] = args.sample_steps
    if args.drop_copies:
        opts["drop_copies"] = True
    for item in args.option or []:
        import yaml

        from .config import safe_yaml

        key, eq, text = item.partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--option {item!r} is not KEY=VALUE", "e.g. --option temperature=0.8")
        try:
            opts[key.strip()] = safe_yaml(text) if text.strip() else None
        except yaml.YAMLError:
            opts[key.strip()] = text
    return opts


def cmd_sample(args: argparse.Namespace) -> int:
    from .plugins import MODALITIES
    from .run import load

    if args.n <= 0:
        raise ConfigError(f"--n is {args.n}", "ask for at least one sample")
    out = Path(args.out) if args.out else None
    if out is not None:
        check_output_file(out)  # before loading or sampling anything
    loaded = load(args.run_dir, args.checkpoint, device=args.device)
    modality = MODALITIES.get(loaded.modality)
    given, answer = loaded.prompt_labels(sample_options(args))  # words -> a conditional model's classes
    opts = loaded.sample_options(**given)  # a bad option is refused before any work
    if answer is not None:
        print(answer.summary())
    fmt = modality.format_for(out, args.format)
    target = out or Path(args.run_dir) / f"sample.{fmt}"
    if not (modality.prints and out is None):
        check_output_file(target.with_suffix(f".{fmt}"))
    loaded.check_n(args.n, None if modality.prints and out is None else fmt)
    if fmt in modality.stream_formats and args.n > STREAM_CHUNK:  # large outputs are never held whole
        chunks = loaded.sample_chunks(args.n, STREAM_CHUNK, seed=args.seed, **opts)
        path = modality.save_stream(chunks, args.n, loaded.model.meta, target, fmt)
        print(f"wrote {args.n} samples to {path}")
        return 0
    layout, asked = {}, opts.get("labels")
    if modality.grids and asked is not None:  # a grid of one column per label, whatever n is
        from .io import label_grid

        opts["labels"], layout["nrow"] = label_grid(asked, args.n)
    samples = loaded.sample(args.n, seed=args.seed, **opts)
    if modality.prints and out is None:  # a terminal acts on control characters: show them escaped
        from .vocab import escape_controls

        print(escape_controls(modality.to_text(samples)))
        return 0
    path = modality.save(samples, target, fmt, **layout)
    print(f"wrote {len(samples)} samples to {path}" + _grid_note(layout.get("nrow"), asked, args.n, path))
    return 0


def _grid_note(nrow: int | None, labels: Any, n: int, path: Path) -> str:
    """' (9 rows x 2 columns, one column per label: 3, 7)' for a picture grid laid out by label."""
    if not nrow or path.suffix != ".png":
        return ""
    from .io import grid_shape

    rows, cols = grid_shape(n, nrow)
    return f" ({rows} rows x {cols} columns, one column per label: {', '.join(map(str, labels))})"


STREAM_CHUNK = 10_240  # samples a chunk when streaming (a multiple of every family's own chunk)


def cmd_explore(args: argparse.Namespace) -> int:
    from .explore import explore

    kinds = [k for k in ("interpolate", "traverse", "reconstruct", "neighbours", "trajectory") if getattr(args, k)]
    check_output_folder(Path(args.out) if args.out else Path(args.run_dir) / "explore")
    written = explore(args.run_dir, kinds or None, checkpoint=args.checkpoint, seed=args.seed, rows=args.rows,
                      steps=args.steps, neighbours=args.k, out=args.out)
    print(f"{len(written)} pictures in {next(iter(written.values())).parent}" if written else "nothing to draw")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    import json

    from .sweep import SweepSpec, run_worker, sweep

    if args.worker:  # one worker process of a `--workers K` sweep
        spec = SweepSpec(**json.loads(Path(args.worker).read_text()))
        run_worker(spec, threads=args.threads, worker=args.worker_index)
        return 0
    if not args.recipe or not args.out:
        raise ConfigError("aigc sweep needs a recipe and --out", "e.g. aigc sweep digits-gan --param "
                                                                 "train.lr=loguniform:1e-5:1e-2 --out sweeps/x")
    metrics = [m.strip() for m in args.metric.split(",") if m.strip()]
    directions = [d.strip() for d in args.direction.split(",")] if args.direction else None
    spec = SweepSpec(recipe=args.recipe, params=list(args.param or []), trials=args.trials, out=args.out,
                     metrics=metrics, directions=directions, steps=args.steps, minutes=args.minutes,
                     workers=args.workers, eval_n=args.eval_n, seed=args.seed, overrides=list(args.set or []),
                     space=args.space)
    check_output_folder(Path(args.out))
    sweep(spec)
    print(f"report: {Path(args.out) / 'report.md'}; best config: {Path(args.out) / 'best.yaml'}")
    return 0


def _data_config(args: argparse.Namespace):
    """A checked DataConfig from the source and the shaping options the user gave."""
    from .config import DataConfig, from_dict

    fields = {"source": args.source}
    for key in ("root", "image_size", "channels", "crop", "limit", "test_fraction", "split_seed", "block_size",
                "sample_rate", "seconds", "label_pattern", "split_pattern"):
        if getattr(args, key, None) is not None:
            fields[key] = getattr(args, key)
    cfg = from_dict(DataConfig, fields, "data")
    cfg.check()
    return cfg


def cmd_data_audit(args: argparse.Namespace) -> int:
    from .data.audit_report import source_modality
    from .plugins import MODALITIES

    if not 0.0 < args.near < 1.0:
        raise ConfigError(f"--near is {args.near}", "use a cosine between 0 and 1, e.g. 0.995")
    out = Path(args.out or Path("audits") / re.sub(r"[^A-Za-z0-9._-]+", "-", args.source).strip("-"))
    check_output_folder(out)
    cfg = _data_config(args)
    modality = MODALITIES.get(source_modality(cfg))  # asked once: an undeclared source is loaded to tell
    report = modality.audit(cfg, out, args.near)
    print("\n".join(modality.audit_summary(report)))
    others = sorted(p.name for p in out.iterdir() if p.name != "report.md")
    print(f"report written to {out}/report.md" + (f" (and {', '.join(others)})" if others else ""))
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    from .data.prepare import prepare

    if args.strip_ansi:
        return _strip_ansi(args)
    check_output_folder(Path(args.out))
    manifest = prepare(_data_config(args), Path(args.out), dedup=args.dedup)
    counts = ", ".join(f"{k} {v}" for k, v in manifest["counts"].items())
    print(f"prepared {manifest['source']} -> {args.out}: {counts}, shape {manifest['shape']}")
    if manifest["dedup"]:
        print(f"dropped duplicates: {manifest['dedup']['dropped']}")
    print(f"train on it with: aigc train RECIPE --set data.source=prepared:{args.out}")
    return 0


def _strip_ansi(args: argparse.Namespace) -> int:
    """`aigc data prepare lines:FILE --strip-ansi --out CLEAN.txt`: the text file without ANSI codes."""
    from .data.prepare import strip_ansi_copy

    if args.dedup or args.image_size or args.channels or args.crop:
        raise ConfigError("--strip-ansi writes a cleaned text file and takes no image options",
                          "drop --dedup, --image-size, --channels and --crop")
    check_output_file(Path(args.out))
    done = strip_ansi_copy(args.source, Path(args.out))
    print(f"removed {done['sequences']} ANSI escape sequences from {done['lines']} lines of {done['source']} "
          f"-> {done['out']}")
    print(f"train on it with: aigc train RECIPE --set data.source={done['clean_source']}")
    return 0


def _add_data_commands(sub: Any) -> None:
    d = sub.add_parser("data", help="audit a dataset, or prepare it once for training")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=Parser)
    a = dsub.add_parser("audit", help="report counts, duplicates, leaks, outliers and what to do")
    a.add_argument("source", help="dataset name or source: fashion-mnist, digits, folder:DIR, npz:FILE, "
                                  "prepared:DIR, names, lines:FILE, text:FILE, chorales, midi:DIR")
    a.add_argument("--out", help="report folder (default: audits/SOURCE)")
    a.add_argument("--near", type=float, default=0.995, help="cosine at which images count as near-duplicates")
    p = dsub.add_parser("prepare", help="resize/crop/convert, optionally de-duplicate, save for `prepared:DIR`")
    p.add_argument("source", help="image dataset name or source (see `aigc data audit --help`)")
    p.add_argument("--out", required=True, help="folder for data.safetensors and manifest.json "
                                               "(with --strip-ansi: the cleaned text file)")
    p.add_argument("--strip-ansi", action="store_true",
                   help="text: write a copy of a lines:FILE or text:FILE without ANSI escape sequences "
                        "(terminal colour codes) to --out")
    p.add_argument("--dedup", action="store_true",
                   help="drop exact and near-duplicates, and test items that duplicate training items")
    p.add_argument("--image-size", type=int, help="square side after crop and resize")
    p.add_argument("--channels", type=int, choices=[1, 3], help="1 (grayscale) or 3 (RGB)")
    p.add_argument("--crop", choices=["center", "random", "none"], help="how non-square images become square")
    p.add_argument("--test-fraction", type=float, help="test share where the source has no test split")
    p.add_argument("--split-seed", type=int, help="seed of that split")
    for q in (a, p):
        q.add_argument("--root", help="folder holding a named dataset's files")
        q.add_argument("--limit", type=int, help="only the first N training items")
    a.add_argument("--image-size", type=int, help="compare images at this side (default: up to 64)")
    a.add_argument("--channels", type=int, choices=[1, 3], help="1 (grayscale) or 3 (RGB)")
    a.add_argument("--sample-rate", type=int, help="audio: Hz the clips are resampled to (default 8000)")
    a.add_argument("--seconds", type=float, help="audio: clip length (default 1)")
    a.add_argument("--label-pattern", help="audio: labels from file names, e.g. '{label}_{speaker}_{index}'")
    a.add_argument("--split-pattern", help="audio: test split by a name field, e.g. index=0-4")
    a.add_argument("--block-size", type=int,
                   help="text: compare sample lengths with this data.block_size (default: the recipes' 64)")
    a.set_defaults(func=cmd_data_audit)
    p.set_defaults(func=cmd_data_prepare)


def eval_request(args: argparse.Namespace, out_dir: Path, echo: Any, name: str | None = None) -> Any:
    """The EvalRequest for the flags given (checked here so a mistake costs no sampling)."""
    from .metrics import EvalRequest

    req = EvalRequest(n=args.n, seed=args.seed, split=args.split, checkpoint=args.checkpoint, device=args.device,
                      out_dir=out_dir, name=name, intervals=args.intervals, echo=echo)
    if args.metrics:
        req.metrics = [m.strip() for m in ",".join(args.metrics).split(",") if m.strip()]
    if args.inception_weights:
        if not Path(args.inception_weights).is_file():
            raise ConfigError(f"--inception-weights {args.inception_weights} does not exist",
                              "give the path of the FID Inception weights as safetensors")
        from .metrics.inception import check_weights_file

        check_weights_file(args.inception_weights)  # before sampling and the other metrics, not after
        req.inception_weights = args.inception_weights
    if args.no_floor:
        req.floor = False
    if args.iwae_k:
        if min(args.iwae_k) < 1 or max(args.iwae_k) > 5000:
            raise ConfigError(f"--iwae-k {args.iwae_k}", "use importance sample counts from 1 to 5000")
        req.iwae_k = sorted({1, *args.iwae_k})
    if args.likelihood_n is not None:
        if args.likelihood_n < 1:
            raise ConfigError(f"--likelihood-n is {args.likelihood_n}", "use at least 1 test image")
        req.likelihood_n = args.likelihood_n
    return req


def cmd_eval(args: argparse.Namespace) -> int:
    import json

    from .files import atomic_write_text
    from .metrics import evaluate_real, evaluate_run, evaluate_samples
    from .metrics.report import format_result, update_run_report

    if args.samples is not None and (args.real is None or args.run_dir is not None):
        raise ConfigError("--samples needs --real DATASET and no run directory",
                          "e.g. `aigc eval --samples my-samples.npz --real fashion-mnist`")
    if args.samples is None and (args.run_dir is None) == (args.real is None):
        raise ConfigError("give a run directory or --real DATASET (one of them)",
                          "e.g. `aigc eval runs/fashion-dcgan` or `aigc eval --real fashion-mnist`")
    if args.data and args.real is None:
        raise ConfigError("--data sets options of --real DATASET, and none is given",
                          "e.g. `aigc eval --real moving:digits --data frames=20` (a run keeps its own data options)")
    if args.samples is not None:
        given = Path(args.samples)
        out = Path(args.out) if args.out else given.with_name(f"{given.stem}-eval.json")
    elif args.real is not None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", args.real).strip("-") or "data"
        out = Path(args.out) if args.out else Path("runs") / f"floor-{slug}" / "eval.json"
    else:
        out = Path(args.out) if args.out else Path(args.run_dir) / "eval.json"
    echo = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    check_output_file(out)  # folders are made when results are written: a typo leaves none behind
    request = eval_request(args, out.parent, echo, name=out.stem)  # its figures: OUT-closest-pairs.png, ...
    if args.samples is not None:
        result = evaluate_samples(args.samples, _real_data(args), request)
    elif args.real is not None:
        result = evaluate_real(_real_data(args), request)
    else:
        result = evaluate_run(args.run_dir, request)
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(format_result(result))
    print(f"wrote {out}")
    if args.run_dir is not None and args.out is None and update_run_report(Path(args.run_dir), result):
        print(f"updated {Path(args.run_dir) / 'report.md'}")  # an explicit --out leaves the run as it was
    return 0


def _real_data(args: argparse.Namespace) -> Any:
    """--real SOURCE, loaded with the data options given beside it (audio: rate, length, name patterns)."""
    import yaml

    from .config import DataConfig, from_dict
    from .data import load_dataset

    fields: dict[str, Any] = {"source": args.real}
    for key in ("sample_rate", "seconds", "label_pattern", "split_pattern"):
        if getattr(args, key, None) is not None:
            fields[key] = getattr(args, key)
    for item in getattr(args, "data", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--data {item} is not KEY=VALUE", "e.g. --data frames=20")
        try:
            fields[key.strip().removeprefix("data.")] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"--data {item}: the value is not YAML", "e.g. --data speed=[1,3]") from None
    cfg = from_dict(DataConfig, fields, "data")
    cfg.check()
    return load_dataset(cfg)


def cmd_compare(args: argparse.Namespace) -> int:
    from .compare import compare, text_table

    out = Path(args.out or "runs/compare")
    check_output_folder(out)
    echo = (lambda m: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    request = eval_request(args, out, echo)
    table = compare(args.items, request, out, real=args.real, echo=echo)
    print(text_table(table))
    print(f"wrote {out / 'compare.md'}, {out / 'compare.json'}" + (f", {table['picture']}" if table["picture"] else ""))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import logging
    import signal
    import socket

    try:
        import uvicorn

        from .serve import create_app, load_models
    except ImportError as e:
        raise ConfigError(f"aigc serve needs {e.name}", "install it: pip install fastapi uvicorn") from None
    if args.token is not None and not args.token.strip():
        raise ConfigError("--token is empty", "give a secret, or leave --token out")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port is {args.port}", "use 1 to 65535 (0: any free port)")
    models = load_models(args.run_dirs, args.checkpoint, args.device)  # a bad run is one line before anything listens
    loopback = args.host in ("127.0.0.1", "localhost", "::1")
    app = create_app(models, token=args.token, workers_per_model=args.workers_per_model, queue=args.queue,
                     time_limit=args.time_limit,
                     allowed_hosts=["127.0.0.1", "localhost", "[::1]"] if loopback else None)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # accepted connections inherit it: without it a kept-alive connection waited for the client's delayed
    # ACK (40 ms) before the second write of every answer (measured: /health 44 ms, 1 ms with it)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((args.host, args.port))
    except (OSError, OverflowError) as e:
        sock.close()
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {getattr(e, 'strerror', None) or e}",
                          "choose another --port, or stop what holds it") from None
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    print(f"serving {', '.join(models)} on http://{host}:{port}" + (" (token required)" if args.token else "")
          + ("" if loopback else " -- reachable from other machines"),
          file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))

    def stopped(signum: int, frame: Any) -> None:  # uvicorn shuts down, then raises the signal it caught again
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stopped)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: not an error
        pass
    print("stopped", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- parser

def build_parser() -> Parser:
    p = Parser(prog="aigc", description="Train generative models on your own data, measure them, use them.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    r = sub.add_parser("recipes", help="list the named, ready-to-run configs")
    r.set_defaults(func=cmd_recipes)

    t = sub.add_parser("train", help="train a recipe or a YAML config into a run directory")
    t.add_argument("spec", nargs="?", help="recipe name (see `aigc recipes`) or path to a YAML config")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. train.lr=1e-4")
    t.add_argument("--steps", type=int, help="training steps (train.steps)")
    t.add_argument("--seed", type=int, help="random seed")
    t.add_argument("--out", help="run directory (default: runs/NAME)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    t.add_argument("--nproc", type=int, metavar="N", help="train in N processes on this machine (torchrun; "
                   "one per GPU, or splitting the CPU cores): the same global batch, split")
    t.add_argument("--max-restarts", type=int, metavar="K", help="with --nproc: when a process dies, restart "
                   "the job from its last checkpoint up to K times")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="draw samples from a trained run")
    s.add_argument("run_dir", help="a run directory written by `aigc train`")
    s.add_argument("--n", type=int, default=16, help="how many samples")
    s.add_argument("--seed", type=int, help="random seed (same seed, same samples)")
    s.add_argument("--label", action="append", help="class name or index (conditional models; repeat for several: "
                                                      "the PNG grid has one column per label)")
    s.add_argument("--out", help="output file (.png grid, .npz arrays or .txt) or folder (audio, video, music)")
    s.add_argument("--format", help="output format: png or npz for images, txt for text, mid for music "
                                    "(default from --out's suffix)")
    s.add_argument("--checkpoint", default="latest", help="latest, best, or a name like step-00001000")
    s.add_argument("--device", default="cpu", help=DEVICE_HELP)
    s.add_argument("--no-ema", action="store_true", help="sample the raw generator instead of its EMA")
    s.add_argument("--temperature", type=float, help="text, music: sharpen (<1) or flatten (>1) the choices; 0 is greedy")
    s.add_argument("--top-k", type=int, help="text, music: choose only among the k likeliest tokens")
    s.add_argument("--top-p", type=float, help="text, music: choose only among the likeliest tokens holding this mass")
    s.add_argument("--prompt", help="text models: a prefix: every sample starts with this text and continues it. "
                                     "Conditional image/audio/video models: free words matched to the model's "
                                     "classes (scores shown; below a threshold it says what the model makes); "
                                     "'a dress + a coat' or '0.7 dress + 0.3 coat' mixes classes")
    s.add_argument("--max-len", type=int, help="text: at most this many new characters a sample")
    s.add_argument("--bars", type=int, help="music: each piece's length in bars, prompt bars included (default 8)")
    s.add_argument("--prompt-bars", type=int,
                   help="music: start each piece from the first N bars of a test piece (piece i: test piece i)")
    s.add_argument("--key", help="music: the key to write in, e.g. D or 'F# minor' (its mode steers the model; "
                                 "default: C major or A minor, as it trained)")
    s.add_argument("--max-copy-bars", type=int,
                   help="music: draw again a piece that repeats more than N consecutive bars of a training piece")
    s.add_argument("--drop-copies", "--novel", action="store_true",
                   help="text: leave out samples that occur verbatim in the training lines")
    s.add_argument("--sample-steps", type=int, help="diffusion/flow: sampler steps (default: the recipe's)")
    s.add_argument("--sampler", help="diffusion: ddim or dpm++2m; flow: euler, heun or midpoint")
    s.add_argument("--guidance", type=float,
                   help="conditional diffusion/flow: classifier-free guidance, 0 ignores the label, 1 plain, >1 harder")
    s.add_argument("--option", action="append", metavar="KEY=VALUE",
                   help="any sample option of the run's family by name (plug-in families' options too)")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("explore", help="pictures of a run's latent space: interpolations, traversals, "
                                       "reconstructions, nearest training images")
    e.add_argument("run_dir", help="a run directory of an image model (GAN or VAE)")
    e.add_argument("--interpolate", action="store_true", help="walks between random latents (and real images' codes)")
    e.add_argument("--traverse", action="store_true", help="VAE: one row per latent dimension, -3..3 sigma, by KL")
    e.add_argument("--reconstruct", action="store_true", help="VAE: real test images beside their reconstructions")
    e.add_argument("--neighbours", action="store_true", help="samples beside their nearest training images")
    e.add_argument("--trajectory", action="store_true",
                   help="diffusion/flow: each sample's path from noise to image, one step per column")
    e.add_argument("--rows", type=int, default=8, help="rows of interpolations / samples (default 8)")
    e.add_argument("--steps", type=int, default=10, help="images per walk or traversal row (default 10)")
    e.add_argument("--k", type=int, default=5, help="nearest training images per sample (default 5)")
    e.add_argument("--seed", type=int, default=0, help="random seed for latents and image choice")
    e.add_argument("--checkpoint", default="latest", help="latest, best, or a name like step-00001000")
    e.add_argument("--out", help="folder for the PNGs (default RUN_DIR/explore, linked from report.md)")
    e.set_defaults(func=cmd_explore)
    v = sub.add_parser("serve", help="serve trained runs over HTTP, with a web page at /")
    v.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (NAME=RUN_DIR names one)")
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    v.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free one)")
    v.add_argument("--token", help="require the header `Authorization: Bearer TOKEN` on every API request")
    v.add_argument("--workers-per-model", type=int, default=1, help="requests sampled at once per model (default 1)")
    v.add_argument("--queue", type=int, default=16,
                   help="requests that may wait per model; more get 429 with Retry-After at once (default 16)")
    v.add_argument("--time-limit", type=float, default=60.0,
                   help="seconds a request may take, waiting included; past it, 503 (default 60)")
    v.add_argument("--checkpoint", default="latest", help="latest, best, or a name like step-00001000")
    v.add_argument("--device", default="cpu", help=DEVICE_HELP)
    v.set_defaults(func=cmd_serve)
    _add_data_commands(sub)
    w = sub.add_parser("sweep", help="search hyper-parameters with Optuna; each trial is a run folder")
    w.add_argument("recipe", nargs="?", help="recipe name or YAML config to tune")
    w.add_argument("--param", action="append", metavar="KEY=KIND:LOW:HIGH",
                   help="a search range: train.lr=loguniform:1e-5:1e-2, train.batch_size=choice:32,64,128, "
                        "model.n_critic=int:1:5 (kinds: uniform, loguniform, int, logint, choice)")
    w.add_argument("--space", help="a named search space: lucic-narrow or lucic-wide (Lucic et al. 2018)")
    w.add_argument("--trials", type=int, default=20, help="finished (complete or pruned) trials wanted")
    w.add_argument("--steps", type=int, help="training steps a trial (default: the recipe's)")
    w.add_argument("--minutes", type=float, help="stop starting trials after this many minutes")
    w.add_argument("--metric", default="fid", help="fid, recall, nll, ... or several: fid,recall (Pareto front)")
    w.add_argument("--direction", help="minimize/maximize per metric (default: each metric's own)")
    w.add_argument("--workers", type=int, default=1, help="worker processes on this machine (cores split)")
    w.add_argument("--eval-n", type=int, default=2000, help="samples per trial evaluation")
    w.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    w.add_argument("--set", action="append", metavar="KEY=VALUE", help="fixed overrides for every trial")
    w.add_argument("--out", help="sweep folder (journal, trial-NNNN runs, report.md, best.yaml)")
    w.add_argument("--worker", help=argparse.SUPPRESS)
    w.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    w.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    w.set_defaults(func=cmd_sweep)
    e = sub.add_parser("eval", help="measure quality, diversity and memorization of a run (or real data)")
    e.add_argument("run_dir", nargs="?", help="a run directory written by `aigc train`")
    e.add_argument("--real", metavar="DATASET", help="the real-data floor: training split vs test split")
    e.add_argument("--samples", metavar="PATH", help="samples made elsewhere (a folder of images or audio "
                                                     "files, an npz, a .txt) measured against --real DATASET's test split")
    e.add_argument("--n", type=int, help="samples to measure (default: images 10000 vs 10000 test, text 1000)")
    e.add_argument("--metrics", action="append", metavar="NAMES",
                   help="images: comma-separated sections (default all): fid,kid,is,prdc,conditional,"
                        "memorization,inception-fid")
    e.add_argument("--out", help="JSON output (default RUN_DIR/eval.json or runs/floor-DATASET/eval.json)")
    e.add_argument("--checkpoint", default="latest", help="latest, best, or a name like step-00001000")
    e.add_argument("--seed", type=int, default=0, help="random seed for sampling and subsets")
    e.add_argument("--device", default="cpu", help=DEVICE_HELP)
    e.add_argument("--split", default="test", choices=["test", "val"], help="held-out split to compare with")
    e.add_argument("--iwae-k", type=int, nargs="+", metavar="K",
                   help="VAEs: importance samples for the IWAE bounds (default 100; the ELBO is always k=1)")
    e.add_argument("--likelihood-n", type=int, metavar="N", help="VAEs: test images for the bounds (default 1000)")
    e.add_argument("--inception-weights", metavar="PATH",
                   help="FID Inception-v3 weights (pytorch-fid's pt_inception-2015-12-05, as .safetensors) "
                        "for standard FID")
    e.add_argument("--no-floor", action="store_true", help="skip the real-data floor (images: its column)")
    e.add_argument("--intervals", type=int, metavar="R",
                   help="images: half-samples behind the 95%% intervals of FID, KID and precision/recall/density/"
                        "coverage (default 20; 0: none)")
    e.add_argument("--quiet", action="store_true", help="no progress notes")
    e.add_argument("--sample-rate", type=int, help="--real audio (and --samples against it): Hz the clips are resampled to (default 8000)")
    e.add_argument("--seconds", type=float, help="--real audio: clip length (default 1)")
    e.add_argument("--label-pattern", help="--real audio: labels from file names, e.g. '{label}_{speaker}_{index}'")
    e.add_argument("--split-pattern", help="--real audio: test split by a name field, e.g. index=0-4")
    e.add_argument("--data", action="append", metavar="KEY=VALUE", default=[],
                   help="--real: any data.* option, repeatable (video: --data frames=20 --data image_size=64)")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="several runs or sample files on one evaluator: one table, one picture")
    c.add_argument("items", nargs="*", help="run directories and/or samples (a folder of images, an npz, a .txt)")
    c.add_argument("--real", metavar="DATASET", help="the real data (default: the runs' own)")
    c.add_argument("--n", type=int, help="samples per item (default: images 10000, text 1000)")
    c.add_argument("--metrics", action="append", metavar="NAMES", help="images: sections, e.g. fid,prdc")
    c.add_argument("--seed", type=int, default=0, help="random seed for sampling and subsets")
    c.add_argument("--no-floor", action="store_true", help="skip the real-data floor row")
    c.add_argument("--intervals", type=int, metavar="R", help="images: half-samples behind the 95%% intervals "
                                                             "(default 20; 0: none)")
    c.add_argument("--out", help="folder for compare.md, compare.json, compare.png (default runs/compare)")
    c.add_argument("--quiet", action="store_true", help="no progress notes")
    c.set_defaults(func=cmd_compare, split="test", checkpoint="latest", device="cpu", inception_weights=None, iwae_k=None,
                   likelihood_n=None)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.func(args) or 0)
    except UserError as e:
        if not e.quiet:
            print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
