"""The code map of README ("Code map") holds: msmae's imports (every import statement, those inside functions too,
read by grimp) form no circle and run down the layers, and the flat modules of `msmae/` are exactly what a checkpoint
carries, importing only each other."""

from pathlib import Path

import grimp
import pytest

import msmae

PACKAGE = Path(msmae.__file__).parent
# Bottom to top. A module belongs to the first layer whose prefix it matches; `msmae` itself (the public names and
# the registration) is the top. The carried modules are the flat modules of msmae/ (see CARRIED).
LAYERS = (
    ("carried", ()),
    ("data", ("msmae.data", "msmae.sample_data", "msmae.metrics")),
    ("serving", ("msmae.serving",)),
    ("training", ("msmae.training",)),
    ("recipes", ("msmae.recipes",)),
    ("cli", ("msmae.cli",)),
    ("public names", ("msmae",)),
)
# Arrows that may run up a layer, each with its reason (at most two).
UPWARD_ALLOWED = set()
CARRIED = frozenset(f"msmae.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem != "__init__")


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("msmae", cache_dir=None)


def layer_of(module: str) -> int:
    if module in CARRIED:
        return 0
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return index
    raise AssertionError(f"{module} is in no layer of the code map")


def arrows(graph):
    return sorted(
        (importer, imported)
        for importer in graph.modules
        for imported in graph.find_modules_directly_imported_by(importer)
    )


def test_no_import_circles(graph):
    circles = [(a, b, graph.find_shortest_chain(importer=b, imported=a)) for a, b in arrows(graph)
               if graph.chain_exists(importer=b, imported=a)]
    assert circles == [], "\n".join(f"{a} -> {' -> '.join(chain)}" for a, _, chain in circles)


def test_imports_run_down_the_layers(graph):
    upward = {(a, b) for a, b in arrows(graph) if layer_of(a) < layer_of(b)}
    assert upward == UPWARD_ALLOWED and len(UPWARD_ALLOWED) <= 2


def test_carried_modules_import_only_each_other(graph):
    """Checkpoints carry these modules flat in one folder, where `msmae` may be missing: each imports its siblings
    relatively and nothing else of msmae (an absolute `msmae.` import, or one of a subpackage, breaks there)."""
    outside = {
        module: sorted(set(graph.find_modules_directly_imported_by(module)) - CARRIED)
        for module in CARRIED
    }
    assert {module: names for module, names in outside.items() if names} == {}
    absolute = sorted(
        (module, detail["line_contents"])
        for module in CARRIED
        for imported in graph.find_modules_directly_imported_by(module)
        for detail in graph.get_import_details(importer=module, imported=imported)
        if detail["line_contents"].startswith(("import msmae", "from msmae"))
    )
    assert absolute == []


def test_checkpoints_carry_exactly_the_flat_modules():
    """What transformers copies into a checkpoint (the model, pipeline and handler files and their relative imports)
    is the set of flat modules: nothing carried lives elsewhere, nothing flat is left behind."""
    from transformers.dynamic_module_utils import get_relative_import_files

    entries = [PACKAGE / name for name in ("modeling_msmae.py", "modeling_sign_translation.py", "pipeline_msmae.py",
                                           "handler.py")]
    copied = {path.stem for entry in entries for path in map(Path, [entry, *get_relative_import_files(entry)])}
    assert {f"msmae.{name}" for name in copied} == CARRIED


# How a load starts: the config (transformers loads it first for every model class and pipeline), or the processor
# on its own (AutoProcessor / AutoFeatureExtractor), each followed by what loads after it.
LOAD_ORDERS = (("configuration_msmae", "modeling_msmae", "pipeline_msmae"), ("processing_msmae",))


@pytest.mark.parametrize("order", LOAD_ORDERS, ids=lambda order: order[0])
def test_transformers_4_copies_every_module_a_load_imports(order):
    """transformers 4.x copies a local checkpoint's module into its code cache with only the modules that file imports
    itself (5.x follows the imports through), then imports the module with its whole import tree: a module missing
    from the cache fails the load (`FileNotFoundError: .../transformers_modules/<name>/pose_io.py`). Whatever a load
    copies, step by step, holds the tree of each module it imports."""
    from transformers.dynamic_module_utils import get_relative_import_files, get_relative_imports

    copied = set()
    for module in order:
        path = PACKAGE / f"{module}.py"
        copied |= {module, *get_relative_imports(path)}
        tree = {module, *(Path(p).stem for p in get_relative_import_files(path))}
        assert tree <= copied, f"{module}: {sorted(tree - copied)} not copied under transformers 4.x"
