"""Which image an algorithm names, whether it is the one its checksum pins, and pulling it.

An algorithm's ``container`` names ``image`` and ``tag`` (``ubuntu`` / ``latest``), or a
digest: ``image`` ``name@sha256:<64 hex>``, or ``tag`` ``sha256:<64 hex>``. Its
``checksum`` (``sha256:<hex>`` or the bare hex) must equal the image's id (the digest
of its configuration, what ``docker images --no-trunc`` shows) or the digest of one of
its repository digests (what a registry serves, ``RepoDigests``). A checksum that
matches neither refuses the job; an empty one is accepted unless required by settings.

Errors never quote the daemon's own message: it can carry registry URLs or names of
credentials helpers. They say what failed in words of their own.
"""

from __future__ import annotations

import asyncio
import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiodocker
from aiodocker.exceptions import DockerError

from tidegate.compute.runtimes import UnsupportedImageError
from tidegate.errors import BadRequestError

__all__ = ["ImageCheckError", "ImageNotAllowedError", "ImageProblem", "ImageRef",
           "check_allowed", "ensure_image", "names_registry", "parse_image", "verify_checksum"]

# The reference grammar of docker/distribution, without its rarely used corners:
# [host[:port]/]component(/component)* with lowercase components.
_HOST: Final = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9-]+)*(?::[0-9]{1,5})?/)"
_COMPONENT: Final = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_NAME: Final = re.compile(rf"^{_HOST}?{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST: Final = re.compile(r"^sha256:[0-9a-f]{64}$")
_CHECKSUM: Final = re.compile(r"^(?:sha256:)?([0-9a-fA-F]{64})$")


class ImageNotAllowedError(BadRequestError):
    """The environment's ``allowedImages`` do not admit the image (400)."""

    code = "image_not_allowed"


class ImageCheckError(BadRequestError):
    """The image does not match the algorithm's ``container.checksum`` (400)."""

    code = "image_checksum_mismatch"


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference: ``name`` plus a ``tag`` or a ``digest``."""

    name: str
    tag: str | None
    digest: str | None
    checksum: str | None
    """The expected ``sha256:<hex>`` (lowercase), or None when none was given."""

    @property
    def reference(self) -> str:
        """``name@sha256:…`` or ``name:tag``: what the daemon is asked for."""
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


@dataclass(frozen=True)
class ImageProblem:
    """The image could not be made available (the job ends in 32 with ``detail``)."""

    detail: str


def parse_image(container: Mapping[str, Any], *, require_checksum: bool = False) -> ImageRef:
    """The image ``container`` names; raises 400 ``unsupported_image`` if malformed.

    ``require_checksum``: refuse a container without a ``checksum``.
    """
    if not isinstance(container, Mapping):
        raise UnsupportedImageError("The algorithm's container must be an object.")
    image, tag = container.get("image"), container.get("tag")
    if not isinstance(image, str) or not image.strip():
        raise UnsupportedImageError("The algorithm's container names no image.")
    if tag is not None and not isinstance(tag, str):
        raise UnsupportedImageError("The algorithm's container tag must be text.")
    name, _, digest = image.strip().partition("@")
    tag = (tag or "").strip()
    if not digest and _DIGEST.match(tag):
        digest, tag = tag, ""
    if not _NAME.match(name) or len(name) > 255:
        raise UnsupportedImageError("The algorithm's container image is not a valid image name.")
    if digest and not _DIGEST.match(digest):
        raise UnsupportedImageError("The algorithm's container digest must be sha256:<64 hex>.")
    if not digest and tag and not _TAG.match(tag):
        raise UnsupportedImageError("The algorithm's container tag is not a valid tag.")
    raw = container.get("checksum")
    checksum: str | None = None
    if isinstance(raw, str) and raw.strip():
        found = _CHECKSUM.match(raw.strip())
        if found is None:
            raise UnsupportedImageError(
                "The algorithm's container checksum must be sha256:<64 hex digits>.")
        checksum = "sha256:" + found.group(1).lower()
    elif raw not in (None, ""):
        raise UnsupportedImageError("The algorithm's container checksum must be text.")
    if checksum is None and require_checksum:
        raise UnsupportedImageError(
            "This provider runs only images pinned by container.checksum.")
    return ImageRef(name=name, tag=None if digest else (tag or "latest"),
                    digest=digest or None, checksum=checksum)


def check_allowed(ref: ImageRef, patterns: Sequence[str]) -> None:
    """Raise :class:`ImageNotAllowedError` unless ``ref`` matches one of ``patterns``.

    A pattern is a glob over the reference as written (``name:tag`` or
    ``name@sha256:…``): ``ubuntu:*``, ``registry.example:5000/team/*``,
    ``*@sha256:*`` (only digests). No patterns: any image.
    """
    if patterns and not any(fnmatch.fnmatchcase(ref.reference, p) for p in patterns):
        raise ImageNotAllowedError(
            f"The image {ref.reference} is not allowed in this compute environment.")


def image_digests(inspect: Mapping[str, Any]) -> set[str]:
    """The image id and every repository digest of an ``images/{name}/json`` answer."""
    digests = {str(inspect.get("Id", ""))}
    for repo_digest in inspect.get("RepoDigests") or ():
        digests.add(str(repo_digest).rpartition("@")[2])
    return {d for d in digests if d}


def verify_checksum(ref: ImageRef, inspect: Mapping[str, Any]) -> None:
    """Raise :class:`ImageCheckError` unless the image is the one ``ref`` pins."""
    if ref.checksum is not None and ref.checksum not in image_digests(inspect):
        raise ImageCheckError(
            f"The image {ref.reference} does not match the algorithm's container.checksum "
            f"(the image's id is {inspect.get('Id', 'unknown')}).")
    if ref.digest is not None and ref.digest not in image_digests(inspect):
        raise ImageCheckError(f"The image found for {ref.reference} has another digest.")


async def inspect_image(docker: aiodocker.Docker, ref: ImageRef) -> dict[str, Any] | None:
    """The daemon's description of the image, or None if it does not have it."""
    try:
        return await docker.images.inspect(ref.reference)
    except DockerError as exc:
        if exc.status == 404:
            return None
        raise


def names_registry(name: str) -> bool:
    """True if ``name`` starts with a registry host (``reg.example/…``, ``host:5000/…``)."""
    first, slash, _ = name.partition("/")
    return bool(slash) and ("." in first or ":" in first or first == "localhost")


def _pull_failure(exc: DockerError) -> str:
    text = exc.message.lower() if isinstance(exc.message, str) else ""
    if exc.status in (401, 403) or any(word in text for word in (
            "denied", "unauthorized", "credentials", "authentication required")):
        return "the registry refused access (unknown image, or credentials needed)"
    if exc.status == 404 or "not found" in text or "manifest unknown" in text:
        return "the registry has no such image"
    if any(word in text for word in ("connection refused", "no such host", "dial tcp",
                                     "timeout", "i/o timeout", "tls")):
        return "the registry could not be reached"
    return "the daemon could not pull it"


async def ensure_image(docker: aiodocker.Docker, ref: ImageRef, *, pull_timeout: float,
                       auth: Mapping[str, str] | None = None
                       ) -> tuple[dict[str, Any] | None, ImageProblem | None, bool]:
    """The image's description, pulling it first if the daemon lacks it.

    Returns ``(inspect, None, pulled)`` or ``(None, problem, False)`` when it cannot be
    had; ``pulled`` says this call pulled it.
    """
    found = await inspect_image(docker, ref)
    if found is not None:
        return found, None, False
    reference = ref.reference
    if auth and not names_registry(ref.name):
        reference = f"docker.io/{reference}"  # credentials go to a named registry
    try:
        await asyncio.wait_for(
            docker.images.pull(reference, auth=dict(auth) if auth else None),
            timeout=pull_timeout)
    except TimeoutError:
        return None, ImageProblem(
            f"Could not pull the image {ref.reference}: timed out after {pull_timeout:g} s."
        ), False
    except DockerError as exc:
        return None, ImageProblem(f"Could not pull the image {ref.reference}: "
                                  f"{_pull_failure(exc)}."), False
    found = await inspect_image(docker, ref)
    if found is None:
        return None, ImageProblem(f"Could not pull the image {ref.reference}: "
                                  "the daemon reports no such image after the pull."), False
    return found, None, True
