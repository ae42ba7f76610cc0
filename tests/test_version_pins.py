"""setup.py asks for version ranges; the venv and CI install the tested pins (constraints.txt)."""

import ast
import re
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _setup_lists():
    """INSTALL_REQUIRES, PEERS and the dev extra of setup.py, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("INSTALL_REQUIRES", "PEERS"):
                found[name] = [ast.literal_eval(e) for e in node.value.elts]
            elif name == "EXTRAS_REQUIRE":
                dev = next(v for k, v in zip(node.value.keys, node.value.values) if k.value == "dev")
                found["dev"] = [ast.literal_eval(e) for e in dev.elts if not isinstance(e, ast.Starred)]
    return found


def _pins():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower()] = version
    return pins


def test_every_requirement_is_a_range_that_holds_its_tested_pin():
    lists, pins = _setup_lists(), _pins()
    requirements = [Requirement(r) for key in ("INSTALL_REQUIRES", "PEERS", "dev") for r in lists[key]]
    assert len(requirements) >= 25
    for req in requirements:
        specs = {s.operator for s in req.specifier}
        assert "==" not in specs and {">=", "<"} <= specs, f"{req}: a range from the tested version"
        pin = pins.get(req.name.lower())
        assert pin is not None, f"{req.name} has no tested pin in constraints.txt"
        lowest = next(s.version for s in req.specifier if s.operator == ">=")
        assert pin == lowest, f"{req.name}: the lower bound {lowest} is not the tested {pin}"
    assert pins["torch"] == pins["torchaudio"]  # they move together


def test_the_venv_script_installs_through_the_constraints():
    script = (ROOT / "scripts" / "setup_venv.sh").read_text()
    installs = [line for line in script.splitlines() if re.search(r"pip install .*(-e|--no-deps)", line)]
    assert len(installs) == 3 and all("-c constraints.txt" in line for line in installs)
    assert "constraints.txt" in script.split("want=")[1].splitlines()[0]  # a changed pin rebuilds the venv
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "scripts/setup_venv.sh" in (ROOT / "Makefile").read_text()
