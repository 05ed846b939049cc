"""The GitHub Pages workflow parses, builds the site with `make build` (the pinned .venv and the strict
MkDocs build, never a loose pip install), uploads `site/` as the Pages artifact and deploys it, with
the permissions Pages needs and every action pinned to a commit."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "pages.yml"
SHA = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}$")


@pytest.fixture(scope="module")
def wf():
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(wf, job):
    return wf["jobs"][job]["steps"]


def test_workflow_parses_and_triggers(wf):
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert on["push"]["branches"] == ["main"] and "workflow_dispatch" in on
    assert wf["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_build_job_runs_make_build_and_uploads_site(wf):
    steps = _steps(wf, "build")
    runs = [s["run"].strip() for s in steps if "run" in s]
    assert runs == ["make build"], runs  # everything else the build needs comes from the Makefile's pins
    assert not any("pip" in r for r in runs)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    site_dir = yaml.safe_load((ROOT / "mkdocs.yml").read_text()).get("site_dir", "site")
    assert upload["with"]["path"] == site_dir
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    make_python = re.search(r"^PYTHON \?= python(\d+\.\d+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert str(python["with"]["python-version"]).startswith(make_python + ".")


def test_deploy_job_deploys_the_artifact(wf):
    job = wf["jobs"]["deploy"]
    assert job["needs"] == "build" and job["environment"]["name"] == "github-pages"
    assert job["environment"]["url"] == "${{ steps.deployment.outputs.page_url }}"
    (step,) = job["steps"]
    assert step["id"] == "deployment" and step["uses"].startswith("actions/deploy-pages@")


def test_every_action_is_pinned_to_a_commit(wf):
    uses = [s["uses"] for job in wf["jobs"].values() for s in job["steps"] if "uses" in s]
    assert len(uses) == 4
    assert [u for u in uses if not SHA.match(u)] == []


def test_make_build_is_the_pinned_strict_build():
    """`make build` installs only from the pinned requirement files and the package itself, then builds
    strictly (a dry run of every recipe, so nothing is installed here)."""
    out = subprocess.run(["make", "--no-print-directory", "-n", "-B", "build"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    installs = [line for line in lines if "pip install" in line]
    assert [re.sub(r".* (-r \S+|-e \.)$", r"\1", line) for line in installs] == [
        "-r requirements.txt", "-r requirements-peers.txt", "-e ."]
    assert lines[-1].endswith("mkdocs build --strict")
    for name in ("requirements.txt", "requirements-peers.txt"):
        for line in (ROOT / name).read_text().splitlines():
            spec = line.split("#", 1)[0].strip()
            if spec:
                assert re.match(r"^[A-Za-z0-9_.\[\],-]+==[\w.+!-]+$", spec), f"{name}: {spec!r} is not pinned"


def test_readme_explains_the_workflow():
    readme = (ROOT / "README.md").read_text()
    assert ".github/workflows/pages.yml" in readme and "GitHub Pages" in readme
