"""The Pod Security Standards' baseline and restricted checks, as Pod Security admission evaluates a pod.

Ported from kubernetes/pod-security-admission@v0.34.9 ``policy/check_*.go`` (the admission library the API
server of Kubernetes 1.34 vendors). Each function below names the upstream check id it ports; a check whose
behaviour changed by version keeps the version split (``sysctls``, ``seLinuxOptions``). Not ported: the
``hostProbesAndHostLifecycle`` check (1.34+, ``host`` field of probes and lifecycle handlers), Windows
``hostProcess`` and the deprecated AppArmor annotations: the docs say so.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

LEVELS = ("privileged", "baseline", "restricted")

# check_capabilities_baseline.go capabilities_allowed_1_0
_BASELINE_CAPABILITIES = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}  # fmt: skip
# check_sysctls.go: the safe set grows by version (1.0, 1.27, 1.29, 1.32).
_SYSCTLS = (
    (0, {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.tcp_syncookies",
         "net.ipv4.ping_group_range", "net.ipv4.ip_unprivileged_port_start"}),
    (27, {"net.ipv4.ip_local_reserved_ports"}),
    (29, {"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
          "net.ipv4.tcp_keepalive_probes"}),
    (32, {"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"}),
)  # fmt: skip
# check_seLinuxOptions.go selinuxAllowedTypes1_0 / 1_31
_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t"}
_SELINUX_TYPES_1_31 = _SELINUX_TYPES | {"container_engine_t"}
# check_restrictedVolumes.go: the only volume sources restricted allows.
_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "image", "persistentVolumeClaim", "projected",
    "secret",
}  # fmt: skip


def _all_containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


def _sc(item: dict[str, Any]) -> dict[str, Any]:
    return item.get("securityContext") or {}


def _names(items: Iterable[dict[str, Any]]) -> str:
    return ", ".join(sorted({str(c.get("name", "")) for c in items}))


def _host_namespaces(spec: dict[str, Any], _v: int) -> str:  # hostNamespaces
    used = [name for name in ("hostNetwork", "hostPID", "hostIPC") if spec.get(name)]
    return f"host namespaces ({', '.join(used)}=true)" if used else ""


def _privileged(spec: dict[str, Any], _v: int) -> str:  # privileged
    bad = [c for c in _all_containers(spec) if _sc(c).get("privileged")]
    return (
        f"privileged (containers {_names(bad)} must not set securityContext.privileged=true)" if bad else ""
    )


def _capabilities_baseline(spec: dict[str, Any], _v: int) -> str:  # capabilities_baseline
    added = {
        str(cap)
        for c in _all_containers(spec)
        for cap in ((_sc(c).get("capabilities") or {}).get("add") or [])
    }
    extra = sorted(added - _BASELINE_CAPABILITIES)
    return f"non-default capabilities ({', '.join(extra)})" if extra else ""


def _host_path(spec: dict[str, Any], _v: int) -> str:  # hostPathVolumes
    bad = [str(v.get("name", "")) for v in spec.get("volumes") or [] if "hostPath" in v]
    return f"hostPath volumes ({', '.join(bad)})" if bad else ""


def _host_ports(spec: dict[str, Any], _v: int) -> str:  # hostPorts
    ports = sorted(
        {int(p["hostPort"]) for c in _all_containers(spec) for p in c.get("ports") or [] if p.get("hostPort")}
    )
    return f"hostPort ({', '.join(map(str, ports))})" if ports else ""


def _app_armor(spec: dict[str, Any], _v: int) -> str:  # appArmorProfile (field form)
    holders = [spec, *_all_containers(spec)]
    bad = {
        str((_sc(h).get("appArmorProfile") or {}).get("type"))
        for h in holders
        if (_sc(h).get("appArmorProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost")
    }
    return f"forbidden AppArmor profile ({', '.join(sorted(bad))})" if bad else ""


def _se_linux(spec: dict[str, Any], version: int) -> str:  # seLinuxOptions
    allowed = _SELINUX_TYPES_1_31 if version >= 31 else _SELINUX_TYPES
    holders = [spec, *_all_containers(spec)]
    for holder in holders:
        options = _sc(holder).get("seLinuxOptions") or {}
        if options.get("type", "") not in allowed or options.get("user") or options.get("role"):
            return "forbidden seLinuxOptions (a custom type, user or role)"
    return ""


def _proc_mount(spec: dict[str, Any], _v: int) -> str:  # procMount (baseline: Default only)
    bad = [c for c in _all_containers(spec) if _sc(c).get("procMount") not in (None, "Default")]
    return f"procMount (containers {_names(bad)} must not set a non-default procMount)" if bad else ""


def _seccomp_baseline(spec: dict[str, Any], _v: int) -> str:  # seccompProfile_baseline
    holders = [spec, *_all_containers(spec)]
    bad = [h for h in holders if (_sc(h).get("seccompProfile") or {}).get("type") == "Unconfined"]
    return "seccompProfile type Unconfined is forbidden" if bad else ""


def _sysctls(spec: dict[str, Any], version: int) -> str:  # sysctls
    allowed: set[str] = set()
    for since, names in _SYSCTLS:
        if version >= since:
            allowed |= names
    bad = sorted(
        {str(s.get("name")) for s in (_sc(spec).get("sysctls") or []) if s.get("name") not in allowed}
    )
    return f"forbidden sysctls ({', '.join(bad)})" if bad else ""


def _volumes_restricted(spec: dict[str, Any], _v: int) -> str:  # restrictedVolumes
    bad = []
    for volume in spec.get("volumes") or []:
        sources = set(volume) - {"name"}
        if not sources & _RESTRICTED_VOLUMES:
            bad.append(f"{volume.get('name', '')} ({', '.join(sorted(sources)) or 'unknown'})")
    return f"restricted volume types: {', '.join(bad)}" if bad else ""


def _privilege_escalation(spec: dict[str, Any], _v: int) -> str:  # allowPrivilegeEscalation
    bad = [c for c in _all_containers(spec) if _sc(c).get("allowPrivilegeEscalation") is not False]
    return f"allowPrivilegeEscalation != false (containers {_names(bad)})" if bad else ""


def _run_as_non_root(spec: dict[str, Any], _v: int) -> str:  # runAsNonRoot
    pod_level = _sc(spec).get("runAsNonRoot")
    explicit = [c for c in _all_containers(spec) if _sc(c).get("runAsNonRoot") is False]
    implicit = [
        c for c in _all_containers(spec) if _sc(c).get("runAsNonRoot") is None and pod_level is not True
    ]
    if pod_level is False or explicit:
        return "runAsNonRoot=false is set"
    if implicit:
        return f"runAsNonRoot != true (pod or containers {_names(implicit)} must set securityContext.runAsNonRoot=true)"
    return ""


def _run_as_user(spec: dict[str, Any], _v: int) -> str:  # runAsUser (1.23+)
    holders = [spec, *_all_containers(spec)]
    return "runAsUser=0 is forbidden" if any(_sc(h).get("runAsUser") == 0 for h in holders) else ""


def _seccomp_restricted(spec: dict[str, Any], _v: int) -> str:  # seccompProfile_restricted (1.19+)
    allowed = ("RuntimeDefault", "Localhost")
    pod_type = (_sc(spec).get("seccompProfile") or {}).get("type")
    if pod_type is not None and pod_type not in allowed:
        return f"seccompProfile type {pod_type} is forbidden"
    unset = []
    for container in _all_containers(spec):
        kind = (_sc(container).get("seccompProfile") or {}).get("type")
        if kind is not None and kind not in allowed:
            return f"seccompProfile type {kind} is forbidden"
        if kind is None and pod_type is None:
            unset.append(container)
    if unset:
        return f'seccompProfile (pod or containers {_names(unset)} must set type "RuntimeDefault" or "Localhost")'
    return ""


def _capabilities_restricted(spec: dict[str, Any], _v: int) -> str:  # capabilities_restricted
    problems = []
    # Ephemeral containers are included upstream too; Windows pods are exempt (not modelled: Linux only).
    for container in _all_containers(spec):
        caps = _sc(container).get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.append(f"{container.get('name', '')} must drop ALL")
        added = [str(c) for c in caps.get("add") or [] if c != "NET_BIND_SERVICE"]
        if added:
            problems.append(f"{container.get('name', '')} must not add {', '.join(added)}")
    return f"unrestricted capabilities ({'; '.join(problems)})" if problems else ""


_BASELINE: tuple[Callable[[dict[str, Any], int], str], ...] = (
    _host_namespaces, _privileged, _capabilities_baseline, _host_path, _host_ports, _app_armor, _se_linux,
    _proc_mount, _seccomp_baseline, _sysctls,
)  # fmt: skip
_RESTRICTED: tuple[Callable[[dict[str, Any], int], str], ...] = (
    _volumes_restricted, _privilege_escalation, _run_as_non_root, _run_as_user, _seccomp_restricted,
    _capabilities_restricted,
)  # fmt: skip


def violations(spec: dict[str, Any], level: str, version: int) -> list[str]:
    """What a pod spec breaks at ``level`` (``privileged`` allows everything) for Kubernetes 1.``version``."""
    if level == "privileged":
        return []
    checks = _BASELINE + (_RESTRICTED if level == "restricted" else ())
    return [problem for check in checks if (problem := check(spec, version))]
