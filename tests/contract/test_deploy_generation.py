"""`make deploy-files` writes a new service's deploy parts, valid as compose and as
Kubernetes, and takes them out again when the service goes (on a copy of deploy/)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi import APIRouter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from kyosei_events import PolicyContext, policy
from kyosei_events.catalogue.intake import CaseEscalated
from kyosei_platform import deploy
from kyosei_platform.service import Service, discover

ROOT = Path(__file__).resolve().parents[2]


class TrialSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KYOSEI_TRIAL_")

    note_max_length: int = Field(2000, description="longest note | in characters")


@policy(CaseEscalated)
async def ignore(event: CaseEscalated, ctx: PolicyContext) -> None:
    """A policy, so that the trial service consumes a topic."""


TRIAL = Service(
    name="trial",
    title="試行",
    description="a service that exists only in this test",
    router=APIRouter(),
    migrations=ROOT,
    order=90,
    policies=[ignore],
    settings=TrialSettings,
)


# What the Strimzi component and its example overlay get from each service.
STRIMZI_GENERATED = {
    deploy.K8S_STRIMZI_OVERLAY / "kustomization.yaml",
    deploy.K8S_STRIMZI / "kustomization.yaml",
    deploy.K8S_STRIMZI / "topics.yaml",
    deploy.K8S_STRIMZI / "users.yaml",
}


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path


def test_a_new_service_gets_its_parts_and_loses_them_when_it_goes(copy: Path) -> None:
    installed = discover()
    services = {**installed, "trial": TRIAL}
    changed = deploy.write(services, copy)
    assert set(changed) == {
        deploy.COMPOSE,
        deploy.K8S_BASE / "kustomization.yaml",
        deploy.K8S_OVERLAY,
        deploy.README,
        deploy.K8S_SERVICES / "trial" / "kustomization.yaml",
        deploy.K8S_TOPICS,
        *STRIMZI_GENERATED,
    }
    assert deploy.out_of_date(services, copy) == []
    assert deploy.out_of_date(installed, copy), "the repository's files now lack the trial service"

    compose = yaml.safe_load((copy / "docker-compose.yml").read_text(encoding="utf-8"))
    trial = compose["services"]["trial"]
    assert trial["build"]["args"] == {"SERVICE": "trial"}
    assert trial["ports"] == [f"${{PUBLISH_ADDRESS:-127.0.0.1}}:{8001 + len(installed)}:8000"]
    assert compose["services"]["trial-migrate"]["command"] == ["migrate", "trial"]
    assert compose["services"]["trial-topics"]["command"] == ["topics", "trial"]
    assert "name: kyosei-topics-trial" in (copy / deploy.K8S_TOPICS).read_text(encoding="utf-8")
    assert "# publishes kyosei.trial.events; consumes kyosei.intake.events" in (
        copy / "docker-compose.yml"
    ).read_text(encoding="utf-8")
    check = subprocess.run(
        [
            *(sys.executable, "-m", "check_jsonschema", "--builtin-schema"),
            *("vendor.compose-spec", str(copy / "docker-compose.yml")),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    readme = (copy / deploy.README).read_text(encoding="utf-8")
    assert "| `KYOSEI_TRIAL_NOTE_MAX_LENGTH` | trial | longest note \\| in characters; " in readme
    assert "| `trial` | 試行 | `kyosei-trial` |" in readme

    objects = _kustomize(copy / "deploy" / "k8s" / "overlays" / "example")
    names = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {("Deployment", "kyosei-trial"), ("Service", "kyosei-trial")} <= names
    for obj in objects:
        kubernetes_validate.validate(obj, "1.30.0", strict=True)
    (deployment,) = [
        o for o in objects if (o["kind"], o["metadata"]["name"]) == ("Deployment", "kyosei-trial")
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["containers"][0]["args"] == ["serve", "trial"]
    assert pod["containers"][0]["image"] == "registry.example.jp/kyosei/trial:0.1.0"

    strimzi = _kustomize(copy / deploy.K8S_STRIMZI_OVERLAY)
    names = {(o["kind"], o["metadata"]["name"]) for o in strimzi}
    assert {
        ("KafkaTopic", "kyosei.trial.events"),
        ("KafkaTopic", "kyosei.trial.dlq"),
        ("KafkaUser", "kyosei-trial"),
    } <= names
    (deployment,) = [
        o for o in strimzi if (o["kind"], o["metadata"]["name"]) == ("Deployment", "kyosei-trial")
    ]
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["KYOSEI_KAFKA_SASL_USERNAME"]["value"] == "kyosei-trial"

    assert deploy.write(installed, copy) == [
        deploy.COMPOSE,
        deploy.K8S_BASE / "kustomization.yaml",
        deploy.K8S_OVERLAY,
        deploy.K8S_STRIMZI_OVERLAY / "kustomization.yaml",
        deploy.K8S_STRIMZI / "kustomization.yaml",
        deploy.README,
        deploy.K8S_TOPICS,
        deploy.K8S_STRIMZI / "topics.yaml",
        deploy.K8S_STRIMZI / "users.yaml",
        deploy.K8S_SERVICES / "trial",
    ]
    assert not (copy / deploy.K8S_SERVICES / "trial").exists()
    for path in deploy.rendered(installed, copy):
        assert (copy / path).read_text(encoding="utf-8") == (ROOT / path).read_text("utf-8")


def test_a_file_without_its_markers_is_named() -> None:
    with pytest.raises(ValueError, match=r"expected one BEGIN services \.\.\. END services block"):
        deploy._fill("services:\n  kafka: {}\n", "services", "")


def _kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed, so the kustomize manifests cannot be rendered")
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
