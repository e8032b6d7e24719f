"""A small, strict kustomize renderer, so that ``make test`` renders the manifests offline.

It implements the subset of kustomize (kustomize.config.k8s.io/v1beta1) that deploy/k8s
uses, with kustomize's meaning: ``resources`` (files, or directories holding a
kustomization.yaml), ``namespace``, ``images`` and ``replicas``. Any other field is
refused rather than ignored, so a kustomization that starts using more is not silently
rendered wrong here; extend this file (and compare with ``kubectl kustomize``) first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas"}
POD_OWNERS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not implement, or is broken."""


def render(directory: Path) -> list[dict[str, Any]]:
    """The documents ``kubectl kustomize directory`` would print, in resource order."""
    path = directory / "kustomization.yaml"
    spec = yaml.safe_load(path.read_text())
    if spec.get("apiVersion") != "kustomize.config.k8s.io/v1beta1" or spec.get("kind") != "Kustomization":
        raise UnsupportedKustomization(f"{path}: not a kustomize.config.k8s.io/v1beta1 Kustomization")
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise UnsupportedKustomization(f"{path}: unsupported fields {sorted(unknown)}")
    documents: list[dict[str, Any]] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        if target.is_dir():
            documents += render(target)
        elif target.is_file():
            documents += [doc for doc in yaml.safe_load_all(target.read_text()) if doc is not None]
        else:
            raise UnsupportedKustomization(f"{path}: resource {entry} does not exist")
    _refuse_duplicates(documents, path)
    for image in spec.get("images", []):
        _set_image(documents, image)
    for replicas in spec.get("replicas", []):
        _set_replicas(documents, replicas, path)
    if "namespace" in spec:
        for document in documents:
            document.setdefault("metadata", {})["namespace"] = spec["namespace"]
    return documents


def _refuse_duplicates(documents: list[dict[str, Any]], path: Path) -> None:
    seen: set[tuple[str, str]] = set()
    for document in documents:
        key = (document.get("kind", ""), document.get("metadata", {}).get("name", ""))
        if key in seen:
            raise UnsupportedKustomization(f"{path}: {key[0]} {key[1]} appears twice")
        seen.add(key)


def containers(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers (and init containers) of a workload's pod template; [] otherwise."""
    if document.get("kind") not in POD_OWNERS:
        return []
    pod = document["spec"]["template"]["spec"]
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


def _image_name(image: str) -> str:
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name[: len(name) - len(last)] + last.split(":", 1)[0]


def _set_image(documents: list[dict[str, Any]], image: dict[str, str]) -> None:
    for document in documents:
        for container in containers(document):
            current = container.get("image", "")
            if _image_name(current) != image["name"]:
                continue
            name = image.get("newName", image["name"])
            if "digest" in image:
                container["image"] = f"{name}@{image['digest']}"
            elif "newTag" in image:
                container["image"] = f"{name}:{image['newTag']}"
            else:
                container["image"] = name + current[len(_image_name(current)):]


def _set_replicas(documents: list[dict[str, Any]], replicas: dict[str, Any], path: Path) -> None:
    for document in documents:
        if document.get("kind") in {"Deployment", "StatefulSet", "ReplicaSet"} \
                and document["metadata"]["name"] == replicas["name"]:
            document["spec"]["replicas"] = int(replicas["count"])
            return
    raise UnsupportedKustomization(f"{path}: replicas for {replicas['name']}, which is no workload here")
