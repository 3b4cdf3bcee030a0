"""Character language models: the shared next-token loss, likelihood and sampler (temperature, top-k/p).

A family subclasses `CharLM` and supplies `forward(idx, state) -> (logits, state)`, which may be
called incrementally: given the state left by earlier tokens it consumes only the new ones (an RNN's
hidden state, a Transformer's key/value cache). The sampler runs the same loop with or without that
state, so the cached and uncached paths draw the same tokens for the same seed.

What the token rows mean is the data's: its `codec` (a registered `TokenCodec`, "chars" unless the
data's facts name another, e.g. "music") gives the vocabulary size, the sample options, the prompt
and the decoding of sampled rows, and the modality the samples belong to. A family trains on any
data whose codec is registered, with no branch on what the tokens stand for.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..plugins import CODECS
from ..vocab import BOS, EOS, PAD, UNK, Vocab, decode_rows, line_hash, unpack_hashes
from .base import GenerativeModel, SampleOptions
from .capabilities import ExactLikelihood, SequenceSampler

MAX_ROUNDS = 20  # sampling rounds when dropping verbatim copies of training lines


@dataclass
class TextModelConfig:
    dropout: float = 0.0             # (schedule, warm-up and clipping are train.* keys, for every family)

    def check(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout is {self.dropout}", "use a value in [0, 1), e.g. 0.1")


def pick(logits: torch.Tensor, generator: torch.Generator | None = None, temperature: float = 1.0,
         top_k: int | None = None, top_p: float | None = None) -> torch.Tensor:
    """One token per row of logits [B, V]: temperature, then top-k, then nucleus (top-p) filtering.

    Draws by inverse CDF from one uniform number per row, so equal logits give equal tokens for the
    same generator state. Temperature 0 is greedy.
    """
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits.double() / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, -math.inf)
    probs = logits.softmax(-1)
    if top_p is not None and top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        before = sorted_p.cumsum(-1) - sorted_p          # mass of the tokens ranked above
        drop_sorted = before >= top_p                    # the first token is always kept
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    cdf = probs.cumsum(-1)
    u = torch.rand(probs.shape[0], 1, generator=generator, dtype=torch.float64)
    u = (u * cdf[:, -1:]).clamp_min(1e-300)
    return (cdf < u).sum(-1).clamp_max(probs.shape[-1] - 1)


def check_sampling(temperature: float, top_k: int | None, top_p: float | None, max_len: int | None) -> None:
    if temperature < 0 or not math.isfinite(temperature):
        raise ConfigError(f"temperature is {temperature}", "use 0 (greedy) or a positive number such as 0.8")
    if top_k is not None and top_k <= 0:
        raise ConfigError(f"top-k is {top_k}", "use a positive whole number, e.g. 10")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top-p is {top_p}", "use a number in (0, 1], e.g. 0.9")
    if max_len is not None and max_len <= 0:
        raise ConfigError(f"max length is {max_len}", "ask for at least one character")


@dataclass
class TextSampleOptions(SampleOptions):
    temperature: float = 1.0       # sharpen (< 1) or flatten (> 1) the choices; 0 is greedy
    top_k: int | None = None       # choose only among the k likeliest tokens
    top_p: float | None = None     # choose only among the likeliest tokens holding this mass
    prompt: str = ""               # every sample starts with this text
    max_len: int | None = None     # at most this many new tokens a sample
    drop_copies: bool = False      # leave out samples that occur verbatim in the training lines
    cache: bool = True             # reuse past keys/values or hidden states (same tokens, faster)

    def check(self) -> None:
        check_sampling(self.temperature, self.top_k, self.top_p, self.max_len)


class TokenCodec:
    """What a sequence family's token rows stand for: subclass it, register it in aigc.plugins.CODECS
    under the name a data source writes as `codec` in its facts, and the sequence families train on
    that data and sample it. Built as `cls(meta)` with the data's facts."""

    modality: ClassVar[str]                      # the modality of the samples `sample` returns
    SampleOptions: ClassVar[type[SampleOptions]]

    def __init__(self, meta: dict[str, Any]):
        self.meta = meta

    @property
    def size(self) -> int:
        """Token ids run from 0 to size - 1 (0 padding, 1 start/end, 2 unknown, as in aigc.vocab)."""
        raise NotImplementedError

    def sample(self, model: CharLM, n: int, generator: torch.Generator | None, **options: Any) -> Any:
        """n samples drawn with `model.generate`, in the modality's in-memory form."""
        raise NotImplementedError

    def hints(self, model: CharLM) -> dict[str, dict[str, Any]]:
        return {}


@CODECS.register("chars")
class CharsCodec(TokenCodec):
    """Text: one token a character (aigc.data.text); samples are strings."""

    modality = "text"
    SampleOptions = TextSampleOptions

    def __init__(self, meta: dict[str, Any]):
        super().__init__(meta)
        self.vocab = Vocab.from_meta(meta)
        self._copies: set[int] | None = None

    @property
    def size(self) -> int:
        return len(self.vocab)

    def hints(self, model: CharLM) -> dict[str, dict[str, Any]]:
        return {"max_len": {"default": model.block_size if model.kind == "lines" else 200}}

    def is_copy(self, text: str) -> bool:
        if self._copies is None:
            blob = self.meta.get("train_hashes")
            if blob is None:
                raise ConfigError("this run keeps no list of training lines to compare with",
                                  "drop-copies works for names and lines:PATH data")
            self._copies = unpack_hashes(blob)
        return line_hash(text) in self._copies

    def sample(self, model: CharLM, n: int, generator: torch.Generator | None = None, *, labels: Any = None,
               temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
               prompt: str = "", max_len: int | None = None, drop_copies: bool = False,
               cache: bool = True) -> list[str]:
        """n strings, each the prompt plus up to max_len new characters.

        drop_copies: leave out samples that occur verbatim in the training lines and draw more (at
        most MAX_ROUNDS rounds, so fewer than n may come back when the model mostly copies).
        """
        if labels is not None:
            raise ConfigError("text models take no labels", "use --prompt to steer the text")
        check_sampling(temperature, top_k, top_p, max_len)
        if max_len is None:
            max_len = model.block_size if model.kind == "lines" else 200
        prefix = [BOS] + self.vocab.encode(prompt)
        if drop_copies:
            self.is_copy("")  # fail early when the run cannot tell
        out: list[str] = []
        for _ in range(MAX_ROUNDS if drop_copies else 1):
            want = n - len(out)
            if want <= 0:
                break
            batch = max(want, 16) if drop_copies else want
            rows = model.generate(prefix, batch, max_len, generator=generator, temperature=temperature,
                                  top_k=top_k, top_p=top_p, cache=cache)
            texts = [prompt + s for s in decode_rows(rows, self.vocab, model.kind, len(prefix))]
            out += [t for t in texts if not (drop_copies and self.is_copy(t))][:want]
        return out


class CharLM(GenerativeModel, ExactLikelihood, SequenceSampler):
    """Next-token prediction over the rows built by aigc.data.text (or any data with a registered codec)."""

    modality = "text"          # for characters; an instance makes its codec's modality
    SampleOptions = TextSampleOptions
    train_defaults = {"grad_clip": 1.0}  # what the text families always did (it keeps long sequences stable)
    max_context: int | None = None   # tokens a forward pass can see (None: unbounded, e.g. an RNN)

    @classmethod
    def makes(cls, meta: dict[str, Any]) -> str:
        return CODECS.get(str(meta.get("codec", "chars"))).modality

    def __init__(self, cfg: Any, meta: dict[str, Any]):
        super().__init__(cfg, meta)
        self.codec = CODECS.get(str(meta.get("codec", "chars")))(meta)
        self.modality = self.codec.modality
        self.SampleOptions = self.codec.SampleOptions
        self.preview_n = getattr(self.codec, "preview_n", type(self).preview_n)
        self.vocab = getattr(self.codec, "vocab", None)  # characters (text data); None for other codecs
        self.vocab_size = self.codec.size
        self.block_size = int(meta["block_size"])
        self.kind = meta.get("kind", "lines")

    def sample_hints(self) -> dict[str, dict[str, Any]]:
        return self.codec.hints(self)

    # ------------------------------------------------------------ the family's part

    def forward(self, idx: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def init_state(self, batch: int) -> Any:
        """The state before any token (None where forward builds its own)."""
        return None

    # ------------------------------------------------------------ training

    def configure_optimizers(self, train: Any) -> dict[str, torch.optim.Optimizer]:
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": train.weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
        return {"model": torch.optim.AdamW(groups, lr=train.lr, betas=tuple(train.betas))}

    def _inputs(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and targets, trimmed to the longest row in the batch (padding costs nothing)."""
        length = int((x[:, 1:] != PAD).sum(1).max()) if x.numel() else 0
        return x[:, :max(length, 1)], x[:, 1:max(length, 1) + 1]

    def training_step(self, batch, opts, step):
        opt = opts["model"]
        inp, tgt = self._inputs(batch["x"])
        logits, _ = self(inp)
        loss = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.detach()}

    def log_likelihood(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """log p(row) in nats per row (every non-pad target, the end token included)."""
        inp, tgt = self._inputs(batch["x"])
        logits, _ = self(inp)
        nll = F.cross_entropy(logits.flatten(0, 1), tgt.flatten(), ignore_index=PAD, reduction="none")
        return -nll.view(tgt.shape).sum(1)

    # ------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate(self, prefix: list[int], n: int, max_new: int, *, generator: torch.Generator | None = None,
                 temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
                 cache: bool = True, banned: list[int] | None = None,
                 until: tuple[int, int] | None = None,
                 allowed: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """[n, len(prefix) + up to max_new] ids; lines stop at the end token (rows after it are junk).

        A model with a bounded context conditions on the tokens since `start`; when they outgrow the
        context, `start` jumps so that the newest half is kept (and a cache is rebuilt from there).
        Runs in the mode the caller set (eval for sampling): it never flips it, so threads may share a model.
        `banned`: more token ids never drawn; `until` (token, k): a row is done once it drew k of that token;
        `allowed(tokens [n, length]) -> bool [n, vocab]`: the tokens each row may draw next.
        """
        tokens = torch.tensor([prefix] * n, dtype=torch.int64).view(n, len(prefix))
        banned = [PAD, UNK] + ([BOS] if self.kind != "lines" else []) + list(banned or [])
        done = torch.zeros(n, dtype=torch.bool)
        drawn = torch.zeros(n, dtype=torch.int64)
        start, fed, state = 0, 0, self.init_state(n) if cache else None
        for _ in range(max_new):
            length = tokens.shape[1]
            if self.max_context is not None and length - start > self.max_context:
                start = length - max(1, self.max_context // 2)
                fed, state = start, self.init_state(n) if cache else None
            if cache:
                logits, state = self(tokens[:, fed:length], state)
                fed = length
            else:  # recompute the whole window, as a model without a cache must
                logits, _ = self(tokens[:, start:length], None)
            last = logits[:, -1].clone()
            last[:, banned] = -math.inf
            if allowed is not None:  # a grammar of the codec's: only tokens that fit where each row stands
                last = last.masked_fill(~allowed(tokens), -math.inf)
            nxt = pick(last, generator, temperature, top_k, top_p)
            tokens = torch.cat([tokens, nxt[:, None]], 1)
            if until is not None:
                drawn += nxt == until[0]
                done |= drawn >= until[1]
            if self.kind == "lines":
                done |= nxt == EOS
            if bool(done.all()):
                break
        return tokens

    @torch.no_grad()
    def sample(self, n: int, *, generator: torch.Generator | None = None, **options: Any) -> Any:
        """n samples as the data's codec makes them (text: strings, each the prompt plus new characters)."""
        return self.codec.sample(self, n, generator, **options)
