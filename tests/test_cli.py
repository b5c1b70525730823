"""The command line in-process: run a model file, summary, plot, report, resume, validate, errors."""

import re
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

import pytensor_blackjax as pbj
from pytensor_blackjax.cli import app, main
from pytensor_blackjax.cli._io import load_model_file, read_results, split_model_spec

runner = CliRunner()

# y_i ~ N(mu, 1) with a flat prior: mu | y ~ N(mean(y), 1/sqrt(n)); z ~ N(0, 2) independently.
Y = [0.3, 1.9, 1.1, 0.4, 1.6, 0.8, 1.2, 0.7, 1.5, 1.0]
MU_MEAN, MU_SD, Z_SD = sum(Y) / len(Y), len(Y) ** -0.5, 2.0

MODEL_FILE = f"""
import numpy as np
import pytensor.tensor as pt
import pytensor_blackjax as pbj

m = pbj.ModelBuilder(name="normal_mean")
mu = m.param("mu")
z = m.param("z")
y = m.data("y", np.array({Y}), observed=True)
m.add_logp(-0.5 * pt.sum((y - mu) ** 2) - 0.5 * (z / {Z_SD}) ** 2)
model = m.build()
other = model
"""


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "normal_model.py"
    path.write_text(MODEL_FILE)
    return path


@pytest.fixture(scope="module")
def run_out(model_file):
    out = model_file.parent / "out"
    result = invoke(
        "run",
        model_file,
        "--draws",
        500,
        "--tune",
        500,
        "--chains",
        4,
        "--seed",
        3,
        "--no-progress",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    return out, result


def test_run_writes_every_output(run_out):
    out, result = run_out
    for name in ("results.zarr", "summary.csv", "trace.png", "report.html"):
        assert (out / name).exists(), name
    assert "r_hat" in result.stdout and "mu" in result.stdout and "seed: 3" in result.stdout


def test_run_posterior_matches_the_known_answer(run_out):
    table = pd.read_csv(run_out[0] / "summary.csv", index_col=0)
    for name, mean, sd in (("mu", MU_MEAN, MU_SD), ("z", 0.0, Z_SD)):
        row = table.loc[name]
        assert abs(row["mean"] - mean) < 5 * row["mcse_mean"], (name, row["mean"], row["mcse_mean"])
        assert abs(row["sd"] - sd) < 5 * row["mcse_sd"], (name, row["sd"], row["mcse_sd"])
        assert row["r_hat"] < 1.02


def test_summary_of_stored_results_keeps_the_model_order(run_out):
    result = invoke("summary", run_out[0] / "results.zarr")
    assert result.exit_code == 0
    assert result.stdout.index("mu") < result.stdout.index(" z ")
    assert "normal_mean" in result.stdout


@pytest.mark.parametrize("kind", ["trace", "rank", "pair", "forest", "energy"])
def test_plot_each_kind(run_out, kind, tmp_path):
    target = tmp_path / f"{kind}.png"
    result = invoke("plot", run_out[0] / "results.zarr", "--kind", kind, "-o", target)
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_svg_and_one_variable(run_out, tmp_path):
    target = tmp_path / "mu.svg"
    result = invoke("plot", run_out[0] / "results.zarr", "--var", "mu", "-o", target)
    assert result.exit_code == 0, result.output
    assert "<svg" in target.read_text()


def test_report_command(run_out, tmp_path):
    target = tmp_path / "again.html"
    result = invoke("report", run_out[0] / "results.zarr", "-o", target)
    assert result.exit_code == 0, result.output
    page = target.read_text()
    assert "normal_mean" in page and "<table" in page and page.count("<img") == 3
    assert "normal_model.py" in page  # the model file is part of the recorded settings


def test_model_file_spec_takes_a_name(model_file):
    assert load_model_file(f"{model_file}:other").name == "normal_mean"
    assert split_model_spec("dir/m.py:my_model") == (Path("dir/m.py"), "my_model")
    assert split_model_spec("C:/models/m.py") == (Path("C:/models/m.py"), None)


def test_demo_prints_progress_and_summary(monkeypatch, model_file):
    # The wiring of `demo`, with a small model standing in for the rat-tumour one.
    namespace = {}
    exec(compile(MODEL_FILE, "model", "exec"), namespace)
    monkeypatch.setattr(pbj.examples, "rat_tumors", lambda: namespace["model"])
    result = invoke("demo", "--draws", 100, "--tune", 100, "--chains", 2, "--seed", 2)
    assert result.exit_code == 0, result.output
    assert "sampling" in result.output and "r_hat" in result.stdout


@pytest.mark.parametrize(
    ("content", "spec", "match"),
    [
        (None, "missing.py", r"model file '.*missing\.py' does not exist"),
        ("x = 1\n", "m.py", r"defines no variable named 'model'"),
        (MODEL_FILE, "m.py:nothing", r"no variable named 'nothing'; it defines models named \['model'"),
        ("model = 3\n", "m.py", r"'model' in '.*m\.py' is a int, not a model"),
        ("import numpy\nmodel = undefined_name\n", "m.py", r"failed \(line 2\): NameError"),
    ],
)
def test_model_file_mistakes_are_one_line(tmp_path, content, spec, match):
    if content is not None:
        (tmp_path / "m.py").write_text(content)
    result = invoke("run", tmp_path / spec)
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert re.search(match, result.stderr), result.stderr


def test_bad_sampler_name_is_one_line(model_file):
    result = invoke("run", model_file, "--sampler", "bogus", "--no-progress")
    assert result.exit_code == 1
    assert "sampler='bogus' is not known" in result.stderr


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("--ess", 400, "--draws", 100), r"--draws 100 and --ess 400 were both given: .*give one of them"),
        (("--max-draws", 500), r"--max-draws 500 caps a run that samples until precise enough; add --ess N"),
    ],
)
def test_length_options_that_contradict_are_one_line(model_file, args, match):
    result = invoke("run", model_file, *args, "--no-progress")
    assert result.exit_code == 1
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1, result.stderr
    assert re.search(match, result.stderr), result.stderr


def test_usage_errors_from_main_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "x.py", "--draws", "-3"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Invalid value for '--draws'") and err.count("\n") == 1
    assert "pytensor-blackjax run --help" in err


def test_the_command_spares_only_its_own_process_the_shutdown_collections(tmp_path):
    """`main()` as the script runs it freezes the garbage collector's objects once its work is done (the
    interpreter's shutdown then skips ~0.5 s of collections); its exit status and output are as before.
    A caller passing arguments keeps its process as it was."""
    import gc
    import subprocess

    before = gc.get_freeze_count()
    with pytest.raises(SystemExit):
        main(["--version"])
    assert gc.get_freeze_count() == before
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0, file=sys.stderr))\n"
        "from pytensor_blackjax.cli import main\n"
        "sys.argv = ['pytensor-blackjax', 'run', 'missing_model.py']\n"
        "main()\n"
    )
    done = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("error:") and "missing_model.py" in done.stderr, done.stderr
    assert done.stderr.rstrip().endswith("frozen True"), done.stderr


def test_ctrl_c_before_the_first_draw_prints_why_and_how_to_resume(model_file, monkeypatch, capsys):
    message = (
        "interrupted (Ctrl-C) before the first draw: there are no draws to return. Resume: pbj.resume('x')"
    )

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt(message)

    monkeypatch.setattr(pbj, "sample", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", str(model_file), "--no-progress"])
    assert exit_info.value.code == 130
    assert message in capsys.readouterr().err


def test_results_mistakes(tmp_path, run_out):
    result = invoke("summary", tmp_path / "none.zarr")
    assert result.exit_code == 1 and "results '" in result.stderr and "do not exist" in result.stderr
    result = invoke("plot", run_out[0] / "results.zarr", "-o", tmp_path / "x.gif")
    assert result.exit_code == 1 and "unsupported extension" in result.stderr
    result = invoke("plot", run_out[0] / "results.zarr", "--var", "nope", "-o", tmp_path / "x.png")
    assert result.exit_code == 1 and "--var 'nope' is not in the posterior" in result.stderr


@pytest.mark.parametrize("command", ["demo", "run", "summary", "plot", "report", "resume", "validate"])
def test_every_command_help_has_an_example(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example: pytensor-blackjax " + command in result.stdout


def test_resume_calls_the_public_resume(monkeypatch, run_out, tmp_path):
    import xarray as xr

    stored = xr.open_datatree(run_out[0] / "results.zarr", engine="zarr", consolidated=False).load()
    calls = []
    monkeypatch.setattr(pbj, "resume", lambda store, model, progressbar: calls.append(store) or stored)
    result = invoke("resume", run_out[0], "--no-progress")
    assert result.exit_code == 0, result.output
    assert calls == [str(run_out[0])] and "mu" in result.stdout
    assert invoke("resume", tmp_path / "gone.zarr").exit_code == 1


@pytest.mark.parametrize("passed", [True, False])
def test_validate_exit_code_follows_the_result(monkeypatch, tmp_path, passed):
    seen = {}

    def run_validation(path, **options):
        seen.update(path=path, **options)
        return types.SimpleNamespace(passed=passed, table=lambda: "posterior | verdict\neight | ok")

    monkeypatch.setitem(
        sys.modules, "pytensor_blackjax.validate", types.SimpleNamespace(run_validation=run_validation)
    )
    result = invoke(
        "validate",
        tmp_path,
        "--sampler",
        "nuts",
        "--sampler",
        "hmc",
        "--only",
        "eight",
        "--only",
        "rats",
        "--seeds",
        "4",
        "--first-seed",
        "2",
    )
    assert result.exit_code == (0 if passed else 1)
    assert "eight | ok" in result.stdout
    assert (
        seen["path"] == tmp_path and seen["sampler"] == ["nuts", "hmc"] and seen["only"] == ["eight", "rats"]
    )
    assert list(seen["seeds"]) == [2, 3, 4, 5] and seen["alpha"] == 0.001


LABELLED_MODEL = """
import pytensor.tensor as pt
import pytensor_blackjax as pbj

m = pbj.ModelBuilder(name="labelled[demo]")
m.coords(group=["c0", "c1", "c2"])
a = m.param("a", shape=3, dims=["group"])
m.add_logp(-0.5 * pt.sum(a**2))
model = m.build()
"""


@pytest.fixture(scope="module")
def labelled_out(tmp_path_factory):
    path = tmp_path_factory.mktemp("labelled") / "labelled.py"
    path.write_text(LABELLED_MODEL)
    out = path.parent / "out"
    result = invoke(
        "run", path, "--draws", 100, "--tune", 100, "--chains", 2, "--seed", 1, "--no-progress", "-o", out
    )
    assert result.exit_code == 0, result.output
    return out, result


def test_lowercase_labels_survive_the_terminal(labelled_out):
    out, result = labelled_out
    assert all(f"a[c{i}]" in result.stdout for i in range(3)), result.stdout
    assert "labelled[demo]" in result.stdout
    again = invoke("summary", out / "results.zarr")
    assert "a[c1]" in again.stdout


def test_plot_one_entry_by_its_label(labelled_out, tmp_path):
    target = tmp_path / "a.png"
    result = invoke("plot", labelled_out[0] / "results.zarr", "--var", "a[c0]", "-o", target)
    assert result.exit_code == 0, result.output
    assert target.exists()
    wrong = invoke("plot", labelled_out[0] / "results.zarr", "--var", "a[c9]", "-o", target)
    assert wrong.exit_code == 1 and "'a[c9]'" in wrong.output and "'c9'" in wrong.output


def test_summary_fits_an_80_column_terminal(run_out):
    import io

    from rich.console import Console

    from pytensor_blackjax.cli._console import print_summary
    from pytensor_blackjax.cli._io import read_results

    tree = read_results(run_out[0] / "results.zarr")
    narrow = io.StringIO()
    print_summary(tree, console=Console(file=narrow, width=80, markup=False))
    lines = narrow.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80, narrow.getvalue()
    header = lines[2]
    assert "mcse_sd" not in header and "r_hat" in header and "ess_bulk" in header, header
    wide = io.StringIO()
    print_summary(tree, console=Console(file=wide, width=160, markup=False))
    assert "mcse_sd" in wide.getvalue()


@pytest.mark.filterwarnings("ignore::pytensor_blackjax.results.SamplingWarning")  # a short run
def test_summary_of_a_store_folder_is_clean(tmp_path):
    model = pbj.examples.rat_tumors()
    store = tmp_path / "run.zarr"
    pbj.sample(model, draws=200, tune=200, chains=2, seed=1, progressbar=False, store=str(store))
    result = invoke("summary", store, "--max-rows", 3)
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr.lower(), result.stderr
    # rows in the model's order, whatever order the file system lists the arrays in
    rows = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("│")]
    assert rows == ["alpha", "beta", "theta[0]"], result.stdout
    assert "more rows (raise --max-rows" in result.stdout and "pytensor-blackjax summary" not in result.stdout


def test_results_without_a_recorded_order_list_variables_by_name(tmp_path):
    tree = xr.DataTree.from_dict(
        {"/posterior": xr.Dataset({n: (("chain", "draw"), np.zeros((1, 3))) for n in ("zeta", "a", "m")})}
    )
    tree.to_zarr(tmp_path / "r.zarr", consolidated=False)
    assert list(read_results(str(tmp_path / "r.zarr"))["posterior"].data_vars) == ["a", "m", "zeta"]


def test_model_repr_summarises_data():
    text = repr(pbj.examples.rat_tumors())
    assert "y: observed int64[71]" in text and "[ 0,  0" not in text and len(text) < 400


def test_version():
    assert pbj.__version__[0].isdigit()


def test_run_keeps_warmup_and_unconstrained_draws(model_file, tmp_path):
    import xarray as xr

    out = tmp_path / "groups"
    result = invoke(
        "run", model_file, "--draws", 20, "--tune", 30, "--chains", 2, "--seed", 3, "--no-progress",
        "--keep-warmup", "--include-unconstrained", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tree = xr.open_datatree(out / "results.zarr", engine="zarr", consolidated=False)
    assert tree["warmup_posterior"].sizes["draw"] == 30
    assert "warmup_sample_stats" in tree.children and "unconstrained_posterior" in tree.children
