"""The serving-only dependency set of model images, and the Dockerfile steps that keep an
image small and make it fail at build time rather than at its first request.

Fast: no wheels are downloaded and nothing is built; the import check serves a real bundle
in a subprocess with the distributions the image leaves out made unimportable.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from packaging.requirements import Requirement
from sklearn.linear_model import LogisticRegression

from modelpilot.config import Settings
from modelpilot.images.context import ImageSpec, environment, model_plan, render_dockerfile
from modelpilot.images.platform import platform_plan
from modelpilot.images.requirements import (
    NOT_IMPORTED,
    NOT_SERVED,
    SERVED,
    image_requirements,
    normalise,
    runtime_requirements,
)
from modelpilot.serving.bundle import write_bundle
from modelpilot.workspace import Workspace
from mp_server import free_port, wait_ready

MINOR = f"{sys.version_info.major}.{sys.version_info.minor}"


def test_every_runtime_dependency_is_either_served_or_left_out_with_a_reason() -> None:
    declared = {
        normalise(Requirement(r).name)
        for r in metadata.requires("modelpilot") or []
        if "extra ==" not in r
    }
    assert declared == set(SERVED) | set(NOT_SERVED)
    assert not set(SERVED) & set(NOT_SERVED)


def test_a_scikit_learn_image_has_what_the_flavor_and_log_need_and_no_duckdb() -> None:
    pins = image_requirements([f"scikit-learn=={metadata.version('scikit-learn')}", "skops"], MINOR)
    names = {p.name for p in pins}
    assert {"scikit-learn", "skops", "scipy", "numpy", "pandas", "pyarrow", "uvicorn"} <= names
    for left_out in ("duckdb", "optuna", "alembic", "psycopg", "fastapi", "jinja2", "croniter"):
        assert left_out not in names
    assert "xgboost" not in names and "pytest" not in names
    assert not names & set(NOT_IMPORTED)  # skops' model cards, uvicorn's reload and WebSockets
    # a package that names one itself gets it
    wanted = image_requirements([f"websockets=={metadata.version('websockets')}"], MINOR)
    assert "websockets" in {p.name for p in wanted}


def test_the_platform_gets_every_runtime_dependency_and_asked_extras() -> None:
    names = {normalise(r.name) for r in runtime_requirements(MINOR, serving_only=False)}
    assert {"duckdb", "fastapi", "alembic", "jinja2"} <= names
    with_s3 = runtime_requirements(MINOR, serving_only=False, extras=("s3",))
    assert "boto3" in {normalise(r.name) for r in with_s3}


def spec(deployment: str | None = None) -> ImageSpec:
    return ImageSpec(
        model="churn", version=4, flavor="sklearn", package_digest="a" * 64, run_id=None,
        python_minor=MINOR, base=f"python:{MINOR}-slim", modelpilot_version="0.1.0", pins=(),
        wheel_name="modelpilot-0.1.0-py3-none-any.whl", deployment=deployment,
    )  # fmt: skip


def test_the_dockerfile_prunes_the_venv_and_checks_the_model_before_the_entry_point() -> None:
    text = render_dockerfile(model_plan(spec()))
    install = text.index("--find-links /tmp/wheelhouse")
    assert install < text.index("-type d -name tests -prune") < text.index("COPY --from")
    prune = text.index("-type d -name tests -prune")
    load_check = text.index("ctypes.CDLL")
    assert prune < text.index("os.link(") < load_check
    assert "\nRUN " not in text[install:load_check]  # one step: pruned files never reach a layer
    assert "uninstall --quiet --yes pip setuptools" in text  # no installer in the image
    # bytecode only for what the entry point imports, written as it imports them
    assert "--no-compile" in text and "compileall" not in text
    warm = text.index(
        "python3 -c 'import modelpilot.cli.main, modelpilot.serving.server, skops.io'"
    )
    assert text.index("COPY runtime/") < warm < text.index("COPY model/")
    check = text.index("modelpilot serve --check churn/4")
    assert text.index("COPY model/") < check < text.index("ENTRYPOINT")
    deployment = render_dockerfile(model_plan(spec("churn-prod")))
    assert "import modelpilot.cli.main, modelpilot.serving.server" in deployment


def test_the_platform_image_shares_the_steps_and_runs_the_server() -> None:
    model = render_dockerfile(model_plan(spec()))
    platform = render_dockerfile(platform_plan(f"python:{MINOR}-slim", MINOR, "mp.whl"))
    shared = model[model.index("# 1.") : model.index("COPY runtime/")]
    assert shared.replace("modelpilot-0.1.0-py3-none-any.whl", "mp.whl") in platform
    assert 'CMD ["server", "--host", "0.0.0.0", "--port", "5000"]' in platform
    assert "/health" in platform and "USER 10001:10001" in platform
    assert "COPY model/" not in platform
    assert "python3 -m compileall -q /opt/modelpilot/venv/lib/" in platform  # all of it


BLOCKER = """
import sys
LEFT_OUT = set(sys.argv.pop(1).split(","))
class LeftOut:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in LEFT_OUT:
            raise ModuleNotFoundError(f"No module named {name!r} (not in the image)", name=name)
sys.meta_path.insert(0, LeftOut())
from modelpilot.cli.main import main
main()
"""


def test_a_bundle_serves_and_logs_without_the_distributions_the_image_leaves_out(
    tmp_path: Path,
) -> None:
    """What the image's entry point imports, run here with DuckDB, FastAPI, Alembic,
    psycopg, Optuna, croniter, Jinja, SQLAlchemy and the NOT_IMPORTED distributions
    unimportable: it serves and writes its log."""
    ws = Workspace(Settings(home=tmp_path / "home"))
    x = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 2)), columns=["a", "b"])
    mv = ws.log_model(LogisticRegression().fit(x, (x["a"] > 0).astype(int)), "churn",
                      input_example=x.head())  # fmt: skip
    write_bundle(tmp_path / "bundle", mv, ws.artifacts)
    expected = ws.load_model("churn/1").predict(x.head(3)).tolist()
    ws.close()
    modules = {"duckdb", "fastapi", "alembic", "mako", "psycopg", "optuna", "croniter", "jinja2"}
    modules |= {"sqlalchemy", "greenlet"}
    modules |= {"prettytable", "wcwidth", "watchfiles", "websockets", "pygments", "markdown_it"}
    modules |= {"mdurl"}
    script = tmp_path / "serve.py"
    script.write_text(textwrap.dedent(BLOCKER))
    port = free_port()
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "image-home"),
           "MODELPILOT_SERVE_BUNDLE": str(tmp_path / "bundle")}  # fmt: skip
    process = subprocess.Popen(
        [sys.executable, str(script), ",".join(sorted(modules)), "serve", "churn/1",
         "--port", str(port), "--durability", "sync"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}", process)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict/churn",
                            json=x.head(3).to_dict("records"))  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert process.stderr is not None
        stderr = process.stderr.read().decode()
        process.stderr.close()
    assert "Traceback" not in stderr, stderr
    assert list((tmp_path / "image-home" / "predictions" / "churn").glob("seg-*.parquet"))


ENTRY_IMPORTS = """
import sys
import modelpilot.cli.main, modelpilot.serving.bundle, modelpilot.serving.server, skops.io
print(" ".join(sorted({name.split(".")[0] for name in sys.modules})))
"""


def test_the_entry_point_and_the_data_plane_import_no_sqlalchemy_and_help_needs_no_pygments() -> (
    None
):
    """What a model image imports before its first request (the bytecode step's modules and
    the bundle's control plane) leaves the store out, so the image need not install it
    (httpx imports pygments for its command-line client when it is there, inside
    ``try: … except ImportError``); `--help` works without pygments with the environment the
    image sets (TYPER_USE_RICH=0)."""
    done = subprocess.run([sys.executable, "-c", ENTRY_IMPORTS], capture_output=True,
                          text=True, timeout=120, check=True)  # fmt: skip
    imported = set(done.stdout.split())
    assert "modelpilot" in imported and "uvicorn" in imported
    assert not imported & {"sqlalchemy", "greenlet", "alembic", "duckdb"}
    left_out = "sqlalchemy,greenlet,pygments,markdown_it,mdurl"
    help_text = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BLOCKER), left_out, "serve", "--help"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, **{k: v for k, v in environment(spec()).items() if "TYPER" in k}},
    )  # fmt: skip
    assert help_text.returncode == 0, help_text.stderr
    assert "--bundle" in help_text.stdout


def test_check_loads_and_predicts_the_bundled_input_example(tmp_path: Path) -> None:
    ws = Workspace(Settings(home=tmp_path / "home"))
    x = pd.DataFrame(np.random.default_rng(1).normal(size=(40, 2)), columns=["a", "b"])
    mv = ws.log_model(LogisticRegression().fit(x, (x["b"] > 0).astype(int)), "churn",
                      input_example=x.head())  # fmt: skip
    write_bundle(tmp_path / "bundle", mv, ws.artifacts)
    ws.close()
    exe = Path(sys.executable).parent / "modelpilot"
    env = {**os.environ, "MODELPILOT_HOME": str(tmp_path / "check")}
    ok = subprocess.run(
        [str(exe), "serve", "--check", "--bundle", str(tmp_path / "bundle"), "churn/1"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "churn/1 loads and predicts its input example (5 rows)" in ok.stdout
    missing = subprocess.run(
        [str(exe), "serve", "--check", "--bundle", str(tmp_path / "bundle"), "churn/2"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert missing.returncode == 3 and "is not in the bundle" in missing.stderr
