"""Render an execution's three manifests: controller Job, controller Service, worker Deployment.

One Jinja2 :class:`~jinja2.Environment` (package templates, ``StrictUndefined``,
``autoescape=False``) and ONE filter, ``q`` (:func:`.jsontext.quote`, JSON text), through
which every value enters a template. The templates emit JSON and hold only the manifest's
shape (at most presence ``if``s); the text is parsed back as JSON (so no value can inject
structure, and every string round-trips exactly) and checked: one object with the expected
apiVersion, kind, name and namespace. ``pod_spec_override`` is merged last
(:func:`.overrides.merge_pod_spec`) when the cluster enables overrides; a job carrying one
on a cluster that does not is refused with Teraslice's message. Templates see the
context's fields as flat variables (:func:`template_variables`: ``name``, ``labels``, ...,
``pod_env``, ...); the pod partial is pasted into the Job and Deployment templates when they
load (:class:`_PartialsLoader`), so each manifest is one compiled function.

The Kubernetes backend calls exactly: :func:`render_controller_job`,
:func:`render_controller_service`, :func:`render_worker_deployment`, plus the helpers
:func:`execution_names`, :func:`service_hostname`, :func:`selector_for`,
:func:`job_selector` and :func:`cluster_selector`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import BaseLoader, Environment, PackageLoader, StrictUndefined, Template, TemplateNotFound

from teraslice_k8s.errors import Problem, TerasliceError, ValidationError
from teraslice_k8s.kubernetes.context import ManifestKind, OwnerRef, RenderContext, build_context
from teraslice_k8s.kubernetes.jsontext import parse, quote
from teraslice_k8s.kubernetes.names import Names, cluster_selector, job_selector, resource_names, selector_for
from teraslice_k8s.kubernetes.overrides import merge_pod_spec
from teraslice_k8s.kubernetes.pod_context import PodContext
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.job import OVERRIDES_DISABLED_MESSAGE
from teraslice_k8s.models.job_fields import SLICER_PORT

__all__ = [
    "Names",
    "OwnerRef",
    "RenderError",
    "cluster_selector",
    "default_owner",
    "execution_names",
    "job_selector",
    "render_controller_job",
    "render_controller_service",
    "render_execution",
    "render_worker_deployment",
    "selector_for",
    "service_hostname",
    "worker_execution",
]


class RenderError(TerasliceError):
    """A template produced something other than the one expected object (a bug, not user input)."""


class _PartialsLoader(BaseLoader):
    """The package's templates, with each ``{% include "_partial..." %}`` replaced by its text.

    Jinja renders an include by looking the partial up and building a new context on every
    render. The partials here read the includer's variables and set none, so pasting their
    text gives the same output from one compiled function (measured ~6 us less per manifest,
    see benchmarks/render.py). A partial that would change meaning when pasted (it sets,
    imports, includes or defines something) is refused when the template loads.
    """

    _INCLUDE = re.compile(r'{%\s*include\s+"(_[\w.]+)"\s*%}')
    _NOT_PASTABLE = re.compile(r"{%-?\s*(set|include|import|from|macro|block|extends)\b")

    def __init__(self) -> None:
        self._package = PackageLoader("teraslice_k8s.kubernetes", "templates")

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str | None, Callable[[], bool]]:
        source, filename, uptodate = self._package.get_source(environment, template)

        def paste(match: re.Match[str]) -> str:
            partial = self._package.get_source(environment, match.group(1))[0]
            if self._NOT_PASTABLE.search(partial):
                raise TemplateNotFound(f"{match.group(1)} cannot be pasted into {template}")
            return partial

        return self._INCLUDE.sub(paste, source), filename, uptodate or (lambda: True)


_ENV = Environment(
    loader=_PartialsLoader(),
    undefined=StrictUndefined,
    autoescape=False,
    keep_trailing_newline=True,
    auto_reload=False,  # templates ship with the package; skip a stat() per render
)
_ENV.filters["q"] = quote
# The templates use no globals (range, dict, ...); without them Jinja copies nothing per render.
_ENV.globals.clear()

# Template variables: the context's fields by name and the pod's fields as ``pod_<field>``
# (flat names are resolved once per render; ``ctx.x`` would cost a Jinja getattr per use).
_CTX_VARIABLES = RenderContext._fields[: RenderContext._fields.index("kind")]  # kind, pod: last
_POD_VARIABLES = tuple(f"pod_{name}" for name in PodContext._fields)


def template_variables(ctx: RenderContext) -> dict[str, Any]:
    """The variables a template sees: ``name``, ``labels``, ... and ``pod_labels``, ``pod_env``, ..."""
    variables: dict[str, Any] = dict(zip(_CTX_VARIABLES, ctx, strict=False))  # stops before ``kind``
    pod: tuple[Any, ...] | None = ctx.pod
    if pod is not None:
        variables.update(zip(_POD_VARIABLES, pod, strict=True))
    return variables


_TEMPLATES: dict[ManifestKind, tuple[str, str, str]] = {
    "job": ("execution_controller_job.json.j2", "batch/v1", "Job"),
    "service": ("execution_controller_service.json.j2", "v1", "Service"),
    "deployment": ("worker_deployment.json.j2", "apps/v1", "Deployment"),
}
_COMPILED: dict[str, Template] = {}


def _template(name: str) -> Template:
    template = _COMPILED.get(name)
    if template is None:
        template = _COMPILED[name] = _ENV.get_template(name)
    return template


def _render(ctx: RenderContext, config: SysConfig) -> dict[str, Any]:
    name, api_version, kind = _TEMPLATES[ctx.kind]
    template = _template(name)
    # Template.render() minus its copies: the variables are fresh and the environment has no
    # globals, so the Context takes them as they are (render() would copy the variables twice
    # and list the template's globals ChainMap on every call).
    context = _ENV.context_class(_ENV, template_variables(ctx), template.name, template.blocks)
    text = "".join(template.root_render_func(context))
    try:
        manifest = parse(text)
    except ValueError as exc:
        raise RenderError(f"{name} produced invalid JSON: {exc}") from None
    metadata = manifest.get("metadata") if isinstance(manifest, dict) else None
    if not (
        isinstance(metadata, dict)
        and manifest.get("apiVersion") == api_version
        and manifest.get("kind") == kind
        and metadata.get("name") == ctx.name
        and metadata.get("namespace") == ctx.namespace
    ):
        raise RenderError(f"{name} did not produce one {api_version} {kind} named {ctx.name}")
    if ctx.pod is not None and ctx.pod.pod_spec_override:
        if not config.teraslice.kubernetes_overrides_enabled:
            raise ValidationError([Problem("pod_spec_override", OVERRIDES_DISABLED_MESSAGE)], subject="job")
        pod = manifest["spec"]["template"]
        pod["spec"] = merge_pod_spec(pod["spec"], ctx.pod.pod_spec_override)
    return manifest  # type: ignore[no-any-return]


def render_controller_job(execution: Mapping[str, Any], config: SysConfig) -> dict[str, Any]:
    """The execution controller's ``batch/v1`` Job (its ``EX`` adds ``slicer_port: 45680``)."""
    return _render(build_context(execution, config, "job"), config)


def render_controller_service(
    execution: Mapping[str, Any], config: SysConfig, owner: OwnerRef
) -> dict[str, Any]:
    """The ``v1`` Service in front of the controller, owned by the controller Job."""
    return _render(build_context(execution, config, "service", owner), config)


def render_worker_deployment(
    execution: Mapping[str, Any], config: SysConfig, owner: OwnerRef
) -> dict[str, Any]:
    """The workers' ``apps/v1`` Deployment, owned by the controller Job.

    ``execution`` should be the record as the master stored it when the status moved to
    ``initializing`` (with ``slicer_hostname``/``slicer_port``): it becomes the workers' ``EX``.
    """
    return _render(build_context(execution, config, "deployment", owner), config)


def execution_names(execution: Mapping[str, Any]) -> Names:
    """The object names of an execution (Teraslice: job name + job-id prefix)."""
    return resource_names(str(execution.get("name", "")), str(execution["job_id"]))


def service_hostname(execution: Mapping[str, Any], config: SysConfig) -> str:
    """``slicer_hostname`` for workers: ``<service name>.<namespace>`` (Teraslice's form)."""
    return f"{execution_names(execution).service}.{config.teraslice.kubernetes_namespace}"


def worker_execution(execution: Mapping[str, Any], config: SysConfig) -> dict[str, Any]:
    """The record the master hands to the workers: status ``initializing`` and the slicer address."""
    record = dict(execution)
    record.update(
        _status="initializing", slicer_port=SLICER_PORT, slicer_hostname=service_hostname(execution, config)
    )
    return record


def default_owner(execution: Mapping[str, Any], config: SysConfig) -> OwnerRef:
    """An owner reference for offline rendering (no Job exists yet to give a real uid).

    The uid is a deterministic UUID5 of ``<namespace>/<controller Job name>`` in the URL
    namespace, so the same input always renders the same manifests.
    """
    name = execution_names(execution).job
    uid = uuid.uuid5(uuid.NAMESPACE_URL, f"teraslice-k8s:{config.teraslice.kubernetes_namespace}/{name}")
    return OwnerRef(name=name, uid=str(uid))


def render_execution(
    execution: Mapping[str, Any], config: SysConfig, owner: OwnerRef | None = None
) -> list[dict[str, Any]]:
    """Job, Service and Deployment as the master would create them, in that order.

    The Deployment is rendered from :func:`worker_execution` (what the master stores before
    allocating workers); ``owner`` defaults to :func:`default_owner`.
    """
    owner = owner or default_owner(execution, config)
    return [
        render_controller_job(execution, config),
        render_controller_service(execution, config, owner),
        render_worker_deployment(worker_execution(execution, config), config, owner),
    ]
