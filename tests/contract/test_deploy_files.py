"""The deployment files stay valid and complete.

docker-compose.yml is checked against the compose specification and the Kubernetes
manifests (rendered with kustomize) against the Kubernetes API schemas; every installed
service is built from the one Dockerfile and deployed by both; the services get only
the variables of the runtime contract, and every secret must be set explicitly.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kyosei_platform import deploy
from kyosei_platform.service import discover, host_ports
from kyosei_platform.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE_ENV_EXAMPLE = ROOT / "deploy" / "compose.env.example"
K8S = ROOT / "deploy" / "k8s"
K8S_BASE = K8S / "base"
K8S_OVERLAY = K8S / "overlays" / "example"
README = ROOT / "deploy" / "README.md"
KUBERNETES_VERSION = "1.30.0"

# The runtime contract: the only variables a kyosei service reads, derived from the
# code so that code and deploy files agree: what every service reads (Settings), and
# per service what only it reads (its Service.settings, KYOSEI_<SERVICE>_*).
PLATFORM_ENV = frozenset(f"KYOSEI_{name.upper()}" for name in Settings.model_fields)
SERVICE_ENV = {
    name: frozenset(f"{svc.env_prefix}{field.upper()}" for field in svc.settings.model_fields)
    for name, svc in discover().items()
    if svc.settings is not None
}
CONTRACT_ENV = PLATFORM_ENV.union(*SERVICE_ENV.values())
# The ones every deployment sets explicitly.
COMPOSE_SETS = frozenset(
    {
        "KYOSEI_DATABASE_URL",
        "KYOSEI_DB_SCHEMA",
        "KYOSEI_KEYS_DATABASE_URL",
        "KYOSEI_KEYS_DB_SCHEMA",
        "KYOSEI_KAFKA_BOOTSTRAP",
        "KYOSEI_MASTER_KEY",
        "KYOSEI_AUTH_SECRET",
        "KYOSEI_HTTP_PORT",
        "KYOSEI_LOG_LEVEL",
    }
)
SECRET_ENV = frozenset({"KYOSEI_MASTER_KEY", "KYOSEI_AUTH_SECRET"})
# Carry a password, so in Kubernetes they belong in the Secret, never the ConfigMap.
SECRET_IN_K8S = SECRET_ENV | {"KYOSEI_DATABASE_URL", "KYOSEI_KEYS_DATABASE_URL"}
# Every setting marked secret (SECRET_IN_K8S and optional ones such as the SASL
# password): never in a ConfigMap.
ALL_SECRETS = frozenset(deploy.secret_settings())
assert SECRET_IN_K8S <= ALL_SECRETS


# Every installed service (its `kyosei.services` entry point), each built from the one
# Dockerfile with --build-arg SERVICE=<name>.
SERVICES = list(discover())
DOCKERFILE = ROOT / "Dockerfile"


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    return loaded


def _kyosei_compose_services() -> dict[str, dict[str, Any]]:
    """Compose services built from our Dockerfile (service, topics and migrate)."""
    found = {}
    for name, spec in _compose()["services"].items():
        if (spec.get("build") or {}).get("dockerfile") == "Dockerfile":
            found[name] = spec
    return found


def _interpolated_variables(text: str) -> dict[str, str]:
    """Each ${NAME...} in a compose file, mapped to its modifier (":?msg", ":-x", "")."""
    return {
        match["name"]: match["modifier"] or ""
        for match in re.finditer(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<modifier>[^}]*)\}", text)
    }


def test_the_known_services_are_installed() -> None:
    assert {"intake", "coordination"} <= set(SERVICES)


def test_one_dockerfile_builds_only_the_named_package_and_serves_it() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(
        r"^FROM python:3\.11-slim|^ARG PYTHON_IMAGE=python:3\.11-slim", dockerfile, re.M
    )
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    for stage in stages:
        if "${SERVICE}" in stage:
            assert re.search(r"^ARG SERVICE$", stage, re.M), "each stage must declare ARG SERVICE"
    assert "pip install --no-cache-dir uv==0.13.9" in dockerfile
    syncs = re.findall(r"uv sync [^\n\\]*", dockerfile)
    assert syncs, "the image must be built with uv sync"
    for sync in syncs:
        assert "--frozen --no-dev --package kyosei-${SERVICE}" in sync, sync
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M)
    for sources in copied:
        for source in sources.split():
            assert source.startswith(
                ("libs/", "services/${SERVICE}/", "pyproject.toml", "uv.lock")
            ), f"the image copies {source}: only libs/ and services/${{SERVICE}}/ belong in it"
    assert re.search(r"^USER (?!0\b|root\b)\S+", dockerfile, re.M), "must run as non-root"
    assert "USER 10001:10001" in dockerfile
    assert 'ENTRYPOINT ["kyosei"]' in dockerfile
    assert 'CMD ["serve"]' in dockerfile
    assert re.search(r"KYOSEI_SERVICE=\$\{SERVICE\}", dockerfile), (
        "serve defaults to the image's service"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_dockerfile_finds_what_it_copies_for_every_service(service: str) -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8").replace("${SERVICE}", service)
    for sources in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.M):
        for source in sources.split():
            assert (ROOT / source).exists(), f"{service}: COPY {source} finds nothing"
    manifest = (ROOT / "services" / service / "pyproject.toml").read_text(encoding="utf-8")
    assert f'name = "kyosei-{service}"' in manifest, "the package is named kyosei-<service>"


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".git", ".venv", ".env", "data"):
        assert entry in ignored


def test_compose_file_matches_the_compose_spec() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_kafka_in_kraft_mode_and_postgres_16_with_healthchecks() -> None:
    services = _compose()["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    assert kafka["image"].startswith("apache/kafka:3.9.")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka["environment"]
    assert kafka["healthcheck"]["test"]
    assert postgres["image"].split(":")[1].startswith("16")
    assert postgres["healthcheck"]["test"]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in postgres["volumes"])


@pytest.mark.parametrize("service", SERVICES)
def test_compose_migrates_then_serves_every_service(service: str) -> None:
    services = _compose()["services"]
    assert service in services, f"service {service} is installed but not in docker-compose.yml"
    migrate_name = f"{service}-migrate"
    assert migrate_name in services, f"no one-shot {migrate_name} in docker-compose.yml"
    migrate, serve = services[migrate_name], services[service]

    for spec in (migrate, serve):
        assert spec["build"] == {
            "context": ".",
            "dockerfile": "Dockerfile",
            "args": {"SERVICE": service},
        }
        assert spec["environment"]["KYOSEI_DB_SCHEMA"] == service
    assert migrate["image"] == serve["image"]
    assert migrate["command"] == ["migrate", service]
    assert migrate.get("restart", "no") == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    assert serve["command"] == ["serve", service]
    topics = services[f"{service}-topics"]
    assert topics["image"] == serve["image"] and topics["build"] == serve["build"]
    assert topics["command"] == ["topics", service]
    assert topics.get("restart", "no") == "no"
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"

    assert serve["command"] == ["serve", service]
    assert serve["depends_on"] == {
        f"{service}-topics": {"condition": "service_completed_successfully"},
        migrate_name: {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "kafka": {"condition": "service_healthy"},
    }
    assert "/health/ready" in " ".join(serve["healthcheck"]["test"])
    assert any(str(port).endswith(":8000") for port in serve["ports"])


def test_deploy_files_are_what_the_installed_services_generate() -> None:
    problems = deploy.out_of_date(discover())
    assert not problems, (
        "the per-service parts of the deploy files differ from the installed services; "
        f"run `{deploy.COMMAND}` and commit the result:\n  " + "\n  ".join(problems)
    )


def test_compose_host_ports_are_the_dev_ports() -> None:
    services = _compose()["services"]
    for name, port in host_ports(discover()).items():
        assert services[name]["ports"][0].endswith(f":{port}:8000"), name
    published = [port for spec in services.values() for port in spec.get("ports", [])]
    on_host = [port.rsplit(":", 2)[-2] for port in published]
    assert len(on_host) == len(set(on_host)), f"host port used twice: {published}"


def test_compose_gives_services_only_contract_variables_and_requires_secrets() -> None:
    kyosei = _kyosei_compose_services()
    assert kyosei, "no service is built from the Dockerfile"
    for name, spec in kyosei.items():
        environment = spec["environment"]
        assert isinstance(environment, dict), f"{name}: use the mapping form for environment"
        service = name.removesuffix("-migrate").removesuffix("-topics")
        unknown = set(environment) - PLATFORM_ENV - SERVICE_ENV.get(service, frozenset())
        assert not unknown, f"{name} sets variables outside the runtime contract: {unknown}"
        missing = COMPOSE_SETS - set(environment)
        assert not missing, f"{name} does not set {missing}"
        for secret in SECRET_ENV:
            assert re.fullmatch(rf"\$\{{{secret}:\?[^}}]+\}}", environment[secret]), (
                f"{name}: {secret} must be ${{{secret}:?message}} so a missing secret fails"
            )
        for url in ("KYOSEI_DATABASE_URL", "KYOSEI_KEYS_DATABASE_URL"):
            assert "${POSTGRES_PASSWORD:?" in environment[url], f"{name}: {url} password"


def test_every_compose_variable_is_listed_in_the_env_example() -> None:
    variables = _interpolated_variables(COMPOSE_FILE.read_text(encoding="utf-8"))
    example = COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8")
    listed = set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", example, re.M))
    assert set(variables) <= listed, f"not in {COMPOSE_ENV_EXAMPLE.name}: {set(variables) - listed}"
    required = {name for name, modifier in variables.items() if modifier.startswith(":?")}
    assert SECRET_ENV | {"POSTGRES_PASSWORD"} <= required
    values = dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", example, re.M))
    for name in required:
        assert values[name] == "", f"{name} must be left empty in the example"


def test_kustomize_base_lists_every_service() -> None:
    kustomization = yaml.safe_load((K8S_BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    resources = set(kustomization["resources"])
    for service in SERVICES:
        folder = K8S_BASE / "services" / service
        assert (folder / "kustomization.yaml").is_file(), f"no {folder.relative_to(ROOT)}"
        assert f"services/{service}" in resources, (
            f"services/{service} is not listed in {K8S_BASE.relative_to(ROOT)}/kustomization.yaml"
        )


def test_readme_documents_every_contract_variable() -> None:
    readme = README.read_text(encoding="utf-8")
    for name in CONTRACT_ENV:
        assert f"`{name}`" in readme
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in readme


# --- rendered Kubernetes manifests -----------------------------------------------------


def _render(path: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        reason = "kubectl is not installed, so the kustomize manifests cannot be rendered"
        if os.environ.get("KYOSEI_REQUIRE_KUBECTL") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {path}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def _deployments(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Deployments by the service their main container serves."""
    found = {}
    for obj in objects:
        if obj["kind"] == "Deployment":
            args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
            assert args[0] == "serve", obj["metadata"]["name"]
            found[args[1]] = obj
    return found


@pytest.mark.parametrize("path", [K8S_BASE, K8S_OVERLAY], ids=["base", "overlay-example"])
def test_rendered_manifests_are_valid_kubernetes(path: Path) -> None:
    objects = _render(path)
    assert objects
    problems = []
    for obj in objects:
        name = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            location = ".".join(str(part) for part in exc.path)
            problems.append(f"{name}: {location}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != "kyosei":
            problems.append(f"{name}: not in namespace kyosei")
    assert not problems, "\n".join(problems)

    deployments = _deployments(objects)
    assert set(deployments) == set(SERVICES), "every installed service, and only those"
    for service, deployment in deployments.items():
        _check_deployment(service, deployment, objects)


def _check_deployment(
    service: str, deployment: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }
    assert spec["securityContext"]["runAsNonRoot"] is True
    tmp_volumes = {v["name"] for v in spec["volumes"] if "emptyDir" in v}

    (migrate,) = spec["initContainers"]
    (app,) = spec["containers"]
    assert migrate["args"] == ["migrate", service]
    assert app["args"] == ["serve", service]
    assert migrate["image"] == app["image"]
    for container in (migrate, app):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert any(
            m["mountPath"] == "/tmp" and m["name"] in tmp_volumes for m in container["volumeMounts"]
        ), f"{service}/{container['name']}: /tmp must be an emptyDir"
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert env.get("KYOSEI_DB_SCHEMA") == service
        allowed = PLATFORM_ENV | SERVICE_ENV.get(service, frozenset())
        assert set(env) <= allowed, set(env) - allowed
        _check_env_sources(container, objects)

    assert app["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert app["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    (port,) = app["ports"]
    assert port["containerPort"] == 8000

    selector = deployment["spec"]["selector"]["matchLabels"]
    services = [
        obj
        for obj in objects
        if obj["kind"] == "Service" and obj["spec"].get("selector") == selector
    ]
    assert len(services) == 1, f"{service}: needs exactly one Service selecting its pods"
    # Its topics Job runs `kyosei topics <service>` in its image, with its settings, and
    # its pod is not behind the service's Service.
    (job,) = [
        o for o in objects if o["kind"] == "Job" and o["metadata"]["name"].endswith(f"-{service}")
    ]
    (topics,) = job["spec"]["template"]["spec"]["containers"]
    assert topics["args"] == ["topics", service]
    assert topics["image"] == app["image"]
    assert topics["envFrom"] == app["envFrom"]
    assert topics["securityContext"]["readOnlyRootFilesystem"] is True
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    assert not services[0]["spec"]["selector"].items() <= job_labels.items()


def _check_env_sources(container: dict[str, Any], objects: list[dict[str, Any]]) -> None:
    """ConfigMaps carry only non-secret contract variables, Secrets only contract ones."""
    by_name = {(o["kind"], o["metadata"]["name"]): o for o in objects}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            config = by_name[("ConfigMap", source["configMapRef"]["name"])]
            keys = set(config["data"])
            assert keys <= CONTRACT_ENV, keys - CONTRACT_ENV
            assert not keys & ALL_SECRETS, f"secrets in a ConfigMap: {keys & ALL_SECRETS}"
        elif "secretRef" in source:
            secret = by_name.get(("Secret", source["secretRef"]["name"]))
            if secret is not None:  # the base leaves the Secret to the operator
                keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
                assert keys <= CONTRACT_ENV, keys - CONTRACT_ENV
                assert keys >= SECRET_IN_K8S, f"Secret lacks {SECRET_IN_K8S - keys}"


def test_overlay_pins_every_image_and_base_has_no_secret() -> None:
    assert not [o for o in _render(K8S_BASE) if o["kind"] == "Secret"], (
        "the base must not ship a Secret: applying it would overwrite the operator's"
    )
    for service, deployment in _deployments(_render(K8S_OVERLAY)).items():
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["initContainers"] + pod["containers"]:
            image = container["image"]
            tag = image.rsplit("/", 1)[-1].partition(":")[2]
            assert tag and tag != "latest", f"{service}: image {image} has no pinned tag"


# --- optional components: Kafka (Strimzi) and PostgreSQL (CloudNativePG) in the cluster

K8S_STRIMZI_OVERLAY = K8S / "overlays" / "strimzi-example"
STRIMZI = "kafka.strimzi.io/v1beta2"
# Their custom resources: kubernetes-validate knows no CRD schemas, so their structure
# is checked here.
CUSTOM = {
    ("kafka.strimzi.io/v1beta2", "Kafka"),
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
    ("kafka.strimzi.io/v1beta2", "KafkaUser"),
    ("postgresql.cnpg.io/v1", "Cluster"),
}


def _runtime_topics() -> set[str]:
    """Every topic name the installed services use: each one's events and dead letters
    and the events topics their policies consume (kyosei_events.topics)."""
    from kyosei_events.topics import dead_letter_topic, events_topic

    services = discover()
    names = set()
    for name, svc in services.items():
        names.add(events_topic(name))
        if svc.policies:
            names.add(dead_letter_topic(name))
        names |= {events_topic(p.event_type.producer) for p in svc.policies}
    return names


def _custom(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and o["apiVersion"] in {a for a, _ in CUSTOM}]


def test_strimzi_overlay_core_resources_are_valid_kubernetes() -> None:
    objects = _render(K8S_STRIMZI_OVERLAY)
    problems = []
    for obj in objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] != "Namespace" and obj["metadata"].get("namespace") != "kyosei":
            problems.append(f"{name}: not in namespace kyosei")
        if (obj["apiVersion"], obj["kind"]) in CUSTOM:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            location = ".".join(str(part) for part in exc.path)
            problems.append(f"{name}: {location}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{name}: {exc.message}")
    assert not problems, "\n".join(problems)
    kinds = {(o["apiVersion"], o["kind"]) for o in objects}
    assert kinds >= CUSTOM, CUSTOM - kinds
    deployments = _deployments(objects)
    assert set(deployments) == set(SERVICES)
    # The KafkaTopics declare the topics: no topics Jobs.
    assert not [o for o in objects if o["kind"] == "Job"]


def _strimzi_kafka(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (kafka,) = _custom(objects, "Kafka")
    assert kafka["apiVersion"] == STRIMZI
    return kafka


def test_strimzi_kafka_runs_kraft_on_three_nodes_with_scram_listeners() -> None:
    objects = _render(K8S_STRIMZI_OVERLAY)
    kafka = _strimzi_kafka(objects)
    annotations = kafka["metadata"]["annotations"]
    assert annotations["strimzi.io/kraft"] == "enabled"
    assert annotations["strimzi.io/node-pools"] == "enabled"
    listeners = {item["name"]: item for item in kafka["spec"]["kafka"]["listeners"]}
    assert (listeners["plain"]["port"], listeners["plain"]["tls"]) == (9092, False)
    assert (listeners["tls"]["port"], listeners["tls"]["tls"]) == (9093, True)
    for listener in listeners.values():
        assert listener["type"] == "internal"
        assert listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert {"topicOperator", "userOperator"} <= set(kafka["spec"]["entityOperator"])

    (pool,) = _custom(objects, "KafkaNodePool")
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert pool["spec"]["replicas"] == 3
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    storage = pool["spec"]["storage"]
    volumes = storage["volumes"] if storage["type"] == "jbod" else [storage]
    assert volumes and all(v["type"] == "persistent-claim" and v["size"] for v in volumes)


def test_strimzi_declares_one_kafka_topic_per_runtime_topic_with_the_defaults() -> None:
    objects = _render(K8S_STRIMZI_OVERLAY)
    cluster = _strimzi_kafka(objects)["metadata"]["name"]
    defaults = deploy.topic_defaults()
    topics = _custom(objects, "KafkaTopic")
    names = [t["spec"]["topicName"] for t in topics]
    assert sorted(names) == sorted(_runtime_topics()), "one KafkaTopic per topic, no other"
    dead_letters = {f"kyosei.{name}.dlq" for name in SERVICES}
    for topic in topics:
        assert topic["apiVersion"] == STRIMZI
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert topic["metadata"]["name"] == topic["spec"]["topicName"]
        assert topic["spec"]["partitions"] == defaults.topic_partitions
        assert topic["spec"]["replicas"] == (defaults.topic_replication_factor or 3)
        retention = (
            defaults.topic_dlq_retention_ms
            if topic["spec"]["topicName"] in dead_letters
            else defaults.topic_retention_ms
        )
        assert topic["spec"]["config"]["retention.ms"] == retention


def test_strimzi_gives_each_service_a_scram_user_it_logs_in_as() -> None:
    objects = _render(K8S_STRIMZI_OVERLAY)
    kafka = _strimzi_kafka(objects)
    cluster = kafka["metadata"]["name"]
    users = {u["metadata"]["name"]: u for u in _custom(objects, "KafkaUser")}
    assert set(users) == {f"kyosei-{name}" for name in SERVICES}
    runtime = _runtime_topics()
    for name, user in users.items():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == cluster
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        acls = user["spec"]["authorization"]["acls"]
        topics = {a["resource"]["name"] for a in acls if a["resource"]["type"] == "topic"}
        assert topics <= runtime
        assert f"kyosei.{name.removeprefix('kyosei-')}.events" in topics

    (config,) = [o for o in objects if o["kind"] == "ConfigMap"]
    data = config["data"]
    assert data["KYOSEI_KAFKA_BOOTSTRAP"].startswith(f"{cluster}-kafka-bootstrap.")
    assert data["KYOSEI_KAFKA_BOOTSTRAP"].endswith(":9093")
    assert data["KYOSEI_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["KYOSEI_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    for service, deployment in _deployments(objects).items():
        spec = deployment["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        ca = volumes["kafka-ca"]["secret"]
        assert ca["secretName"] == f"{cluster}-cluster-ca-cert"
        (item,) = ca["items"]
        # Both: the settings (migrate reads them too) refuse SASL_SSL without a user.
        for container in spec["initContainers"] + spec["containers"]:
            env = {e["name"]: e for e in container["env"]}
            assert env["KYOSEI_KAFKA_SASL_USERNAME"]["value"] == f"kyosei-{service}"
            password = env["KYOSEI_KAFKA_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]
            assert password == {"name": f"kyosei-{service}", "key": "password"}
            mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
            assert data["KYOSEI_KAFKA_SSL_CAFILE"] == f"{mounts['kafka-ca']}/{item['path']}"


def test_cloudnative_pg_cluster_serves_the_services_database() -> None:
    objects = _render(K8S_STRIMZI_OVERLAY)
    (cluster,) = _custom(objects, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert re.fullmatch(r"\S+/postgresql:16(\.\d+)?", spec["imageName"]), spec["imageName"]
    assert spec["bootstrap"]["initdb"] == {"database": "kyosei", "owner": "kyosei"}
    assert spec["storage"]["size"]
    (secret,) = [o for o in objects if o["kind"] == "Secret"]
    rw = f"@{cluster['metadata']['name']}-rw."
    for key in ("KYOSEI_DATABASE_URL", "KYOSEI_KEYS_DATABASE_URL"):
        url = secret["stringData"][key]
        assert url.startswith("postgresql+asyncpg://kyosei:") and rw in url, url
        assert url.endswith("/kyosei")
