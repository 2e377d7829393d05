"""The answer generators by name: the one list that the settings' allowed values, the
``--generator`` choices, the web chat's dropdown and the backend factory all read.

A generator is a name, a one-line description and a factory that builds its
``Backend`` from the settings. ``extractive`` is the exception: it quotes the
chosen sentences and needs no model, so it has no factory. The built-in LLM
generators are registered here by the dotted name of their factory, resolved only when
a backend is actually built: the registry imports neither the backends
(``rag.llm.generation`` pulls in retrieval and the LLM libraries) nor the settings
(which read this list to check a ``generator`` value), so it sits below both.

Anything can add a generator with ``register`` (the tests register a scripted one);
it is then a valid ``generator`` setting and ``--generator`` value at once. This
module does not build or cache backends (``rag.llm.generation.make_backend`` does) and
does not decide answers (``rag.pipeline``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from rag.errors import InputError

EXTRACTIVE = "extractive"


class Backend(Protocol):
    """Streams the text of a chat completion at temperature 0."""

    name: str

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]: ...


# A factory takes the settings (``rag.settings.Settings``, not imported here: the
# settings import this module).
BackendFactory = Callable[[Any], Backend]


@dataclass(frozen=True)
class Generator:
    """One registered generator. ``make`` is None only for the model-free extractive one."""

    name: str
    description: str
    make: BackendFactory | None = None

    @property
    def is_llm(self) -> bool:
        return self.make is not None


_REGISTRY: dict[str, Generator] = {}


def register(
    name: str, description: str, make: BackendFactory | None, *, replace: bool = False
) -> Generator:
    """Add a generator; ``replace`` allows re-registering a name (a test's fresh script)."""
    if not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"generator names are single words, got {name!r}")
    if make is None and name != EXTRACTIVE:
        # The pipeline's model-free path is the extractive answerer; another name
        # without a backend would silently answer extractively under a false label.
        raise ValueError(f"generator {name!r} needs a backend factory")
    if name in _REGISTRY and not replace:
        raise ValueError(f"generator {name!r} is already registered")
    generator = Generator(name, description, make)
    _REGISTRY[name] = generator
    return generator


def unregister(name: str) -> None:
    """Remove a generator (the built-in extractive one stays: it is the fallback)."""
    if name == EXTRACTIVE:
        raise ValueError("the extractive generator cannot be removed")
    _REGISTRY.pop(name, None)


def names() -> tuple[str, ...]:
    """Registered names, in registration order (extractive first)."""
    return tuple(_REGISTRY)


def llm_names() -> tuple[str, ...]:
    return tuple(name for name, g in _REGISTRY.items() if g.is_llm)


def get(name: str) -> Generator:
    """The generator called ``name``; an unknown name is an input error listing the known ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise InputError(f"Unknown generator {name!r}; use one of {', '.join(names())}.") from None


def summary() -> str:
    """ "name (description)" for every generator, for help texts and setting descriptions."""
    return "; ".join(f"{g.name} ({g.description})" for g in _REGISTRY.values())


# -- the built-in generators ------------------------------------------------------------


def lazy(target: str) -> BackendFactory:
    """A factory that imports ``module:function`` when a backend is first built."""
    module, _, function = target.partition(":")

    def make(settings: Any) -> Backend:
        factory = getattr(importlib.import_module(module), function)
        return cast(Backend, factory(settings))

    return make


register(EXTRACTIVE, "no model: quotes the chosen sentences", None)
register("llama-cpp", "a local GGUF through llama-cpp-python",
         lazy("rag.llm.generation:llama_cpp_backend"))  # fmt: skip
register("openai", "any OpenAI-compatible server", lazy("rag.llm.generation:openai_backend"))
register("ollama", "an Ollama server", lazy("rag.llm.generation:ollama_backend"))
