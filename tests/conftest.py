import os
import shutil
from pathlib import Path

import pytest

pytest_plugins = ["tests.slow_tests", "tests.team_fixtures"]

# GUI tests render offscreen; set before any Qt import.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("MARGINALIA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_user_data(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may touch the real user's data folder.
    monkeypatch.setenv("MARGINALIA_DATA_DIR", str(tmp_path_factory.mktemp("user-data")))
    # As on a laptop without bfloat16 instructions: the float32 fallback is the default every test runs;
    # tests/test_precision.py turns the half-precision path on where it tests it.
    monkeypatch.setenv("MARGINALIA_CPU_BF16", "0")


MODEL_TEST_DEVICE = os.environ.get("MARGINALIA_TEST_DEVICE", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if MODEL_TEST_DEVICE in ("", "cpu"):
        return
    for item in items:
        marker = item.get_closest_marker("cpu_only")
        if marker is not None:
            item.add_marker(pytest.mark.skip(reason=f"on the CPU only: {marker.args[0]}"))


@pytest.fixture(autouse=True)
def _models_on_the_test_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """``MARGINALIA_TEST_DEVICE=cuda`` (``make test-gpu``): every model the tests load runs there, whatever
    device a test names, so that the model tests' own assertions check the GPU paths. Tests that assert
    the CPU itself (thread caps, the CPU's precision) are not meant for it."""
    if not MODEL_TEST_DEVICE:
        return
    from engine.models.runtime import DeviceChoice, ModelManager

    original = ModelManager.__init__

    def on_test_device(manager: ModelManager, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        if len(args) >= 2:
            args = (args[0], DeviceChoice(MODEL_TEST_DEVICE), *args[2:])
        else:
            kwargs["device"] = DeviceChoice(MODEL_TEST_DEVICE)
        original(manager, *args, **kwargs)

    monkeypatch.setattr(ModelManager, "__init__", on_test_device)


@pytest.fixture(scope="session")
def shared_servers(request: pytest.FixtureRequest):
    """Servers started once per test run and shared by every worker (``tests/shared_servers.py``)."""
    from tests.shared_servers import SharedServers, run_folder

    return SharedServers(run_folder(request.config))


def pytest_collection_finish(session: pytest.Session) -> None:
    # In a worker of `--dist loadgroup`, a grouped test's id must carry its group, or xdist spreads the group
    # over the workers without a word (it did under pytest 9: the benches each warmed up twice).
    if getattr(session.config.option, "loadgroup", False):
        lost = [item.nodeid for item in session.items
                if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rsplit("]", 1)[-1]]
        if lost:
            raise pytest.UsageError(f"pytest-xdist did not group {len(lost)} test(s) (for example {lost[0]}): "
                                    f"pytest {pytest.__version__} and this xdist do not work together.")


def pytest_unconfigure(config: pytest.Config) -> None:
    # The run's controller (the only process when xdist is off) stops the servers once every worker is done.
    factory = getattr(config, "_tmp_path_factory", None)
    if hasattr(config, "workerinput") or factory is None or getattr(factory, "_basetemp", None) is None:
        return
    from tests.shared_servers import run_folder, stop_all

    stop_all(run_folder(config))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"the shared sample scans are missing at {SHARED_DATA}")
        pytest.skip(f"shared sample scans not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def _new_project_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One new project made the real way (schema migrations included, a tenth to a fifth of a second), that
    the ``project`` fixture copies for each test."""
    from engine.project import Project

    folder = tmp_path_factory.mktemp("project-template") / "project"
    Project.create(folder, name="Test project").close()
    assert not list(folder.glob("*-wal")), "a closed project leaves its write-ahead log checkpointed"
    return folder


@pytest.fixture
def project(tmp_path: Path, _new_project_template: Path):
    """A new, empty project in ``tmp_path / "project"``: a copy of one made by ``Project.create``."""
    from engine.project import Project

    shutil.copytree(_new_project_template, tmp_path / "project")
    with Project.open(tmp_path / "project") as opened:
        yield opened


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch):
    """The fake Hugging Face hub on 127.0.0.1, set as ``HF_ENDPOINT``."""
    from tests.modelkit.fake_hub import FakeHub

    server = FakeHub().start()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory):
    """``tiny_models(model_id)`` → a folder with the tiny model's files, built once per test session."""
    from tests.modelkit.tiny import write_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, Path] = {}

    def folder(model_id: str) -> Path:
        if model_id not in built:
            built[model_id] = write_tiny(model_id, root / model_id)
        return built[model_id]

    return folder


@pytest.fixture
def model_store(tmp_path: Path, tiny_models):
    """An empty model store; ``model_store.add_tiny(model_id)`` imports a tiny model (and what it requires)."""
    from engine.models.catalogue import get_spec
    from engine.models.store import ModelStore
    from tests.modelkit.tiny import tiny_spec

    store = ModelStore(tmp_path / "models")

    def add_tiny(model_id: str):
        for required in get_spec(model_id).requires:
            if store.get(required) is None:
                add_tiny(required)
        return store.import_files(tiny_spec(model_id), [tiny_models(model_id)])

    store.add_tiny = add_tiny  # type: ignore[attr-defined]
    return store
