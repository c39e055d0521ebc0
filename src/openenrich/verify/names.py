"""Name matching for people and companies: the `name_match` tool and sanctions screening.

Two steps. `normalise` turns a name into tokens: transliterated to ASCII (anyascii, so
Cyrillic, Arabic, Devanagari, Han and Hangul names compare with their Latin spellings),
casefolded, punctuation and diacritics gone, leading honorifics ("Mr", "Dr", "Shri",
"Smt") and trailing generational suffixes ("Jr") dropped, and legal forms ("Ltd",
"Limited", "Pvt Ltd", "GmbH", "S.A.", a leading "OOO") dropped but remembered, since
they say the name is a company's. An initial ("R." or "R") is a token of length one.

`match` then aligns the two token lists one to one. Each pair of tokens has a
similarity: rapidfuzz's `ratio` (the normalised Indel similarity: "shamra"/"sharma" is
0.83), or INITIAL_CREDIT for an initial against a token it begins. Pairs are taken
greedily, most similar first, and a pair below MIN_PAIR is no pair at all ("sharma" is
not "verma"). Every token weighs one (an initial INITIAL_WEIGHT, as it says less), and
the score is the weight of the paired tokens, each pair times its similarity, over the
weight of all the tokens on both sides. So word order never matters, a typo costs in
proportion to how much of its token it changes, and every token left unpaired, on
either side, lowers the score: a missing patronymic ("Viktor Kozlov" against "Viktor
Petrovich Kozlov") costs a fifth, a missing word of a two-word company a third.

Two adjacent tokens whose concatenation is a token of the other name count as that one
token ("Abdul Rahman" and "Abdulrahman", "Xi Jin Ping" from 習近平 and "Xi Jinping"), and
the Arabic article is joined to its word ("Al Farouq", "Al-Farouq", "الفاروق"). Arabic
and Hebrew script leave short vowels out (محمد is "mhmd"), so with a name in them tokens
are compared without vowels too: "mhmd" and "Mohammed" pair, as, less happily, do "mhmd"
and "Ahmed".

Why not rapidfuzz's token_set_ratio, the usual choice: it compares the tokens the two
names share with each name and keeps the best, so when one name's tokens are a subset of
the other's ("Acme" and "Holdings Acme"; "Mohammed" and "Mohammed Ali Khan") it scores
100. For screening that is the worst failure: one common token makes every name that
contains it a perfect match. token_sort_ratio has no subset pitfall, but it compares the
sorted tokens as one string: it cannot credit an initial, and a token missing from the
middle shifts every token after it against the other name.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii
from rapidfuzz.fuzz import ratio


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MIN_PAIR = 0.6  # tokens less similar than this are different tokens, not a typo
INITIAL_CREDIT = 0.75  # "r" against "rahul": the same letter, but many names start with it
INITIAL_WEIGHT = 0.5  # an initial carries less of a name than a whole token does

# Titles before a name. Only leading ones are dropped: "Lord", "Sir" or "Dame" may be a
# surname further in.
HONORIFICS = _words(
    "mr mrs ms miss mx dr prof professor sir dame lord lady rev revd reverend hon shri "
    "shree sri smt shrimati srimati kumari kum janab mohtarma haji hajji hj herr frau mme "
    "mlle mnr dhr capt col gen maj lt sgt cdr adm eng datuk dato datin"
)
ARTICLES = frozenset({"al", "el"})
CONNECTIVES = frozenset({"and"})  # "Smith & Sons" is "Smith and Sons"
GENERATIONAL = _words("jr junior sr senior ii iii iv")

# Legal forms and the one spelling each stands for. Matched at the end of a name,
# longest first, repeatedly ("Acme Co Pvt Ltd"); those in LEADING_LEGAL_FORMS at the
# start ("OOO Romashka", "PT Bank Maju").
LEGAL_FORMS = {
    "ltd": "ltd",
    "limited": "ltd",
    "llc": "llc",
    "l l c": "llc",
    "limited liability company": "llc",
    "inc": "inc",
    "incorporated": "inc",
    "corp": "corp",
    "corporation": "corp",
    "co": "co",
    "company": "co",
    "and co": "co",
    "co ltd": "co ltd",
    "company limited": "co ltd",
    "gmbh": "gmbh",
    "mbh": "gmbh",
    "kg": "kg",
    "gmbh co kg": "gmbh co kg",
    "ag": "ag",
    "a g": "ag",
    "sa": "sa",
    "s a": "sa",
    "sas": "sas",
    "s a s": "sas",
    "sarl": "sarl",
    "s a r l": "sarl",
    "sl": "sl",
    "s l": "sl",
    "plc": "plc",
    "p l c": "plc",
    "public limited company": "plc",
    "pvt": "pvt",
    "private": "pvt",
    "pvt ltd": "pvt ltd",
    "private limited": "pvt ltd",
    "pte": "pte",
    "pte ltd": "pte ltd",
    "pty": "pty",
    "pty ltd": "pty ltd",
    "llp": "llp",
    "l l p": "llp",
    "limited liability partnership": "llp",
    "lp": "lp",
    "bv": "bv",
    "b v": "bv",
    "nv": "nv",
    "n v": "nv",
    "srl": "srl",
    "s r l": "srl",
    "spa": "spa",
    "s p a": "spa",
    "se": "se",
    "ab": "ab",
    "oy": "oy",
    "aps": "aps",
    "as": "as",
    "a s": "as",
    "kk": "kk",
    "fze": "fze",
    "fzco": "fzco",
    "fzc": "fzc",
    "fz llc": "fz llc",
    "wll": "wll",
    "jsc": "jsc",
    "pjsc": "pjsc",
    "ojsc": "ojsc",
    "cjsc": "cjsc",
}
LEADING_LEGAL_FORMS = _words("ooo oao zao pao pjsc jsc ojsc cjsc tov pt")
_LONGEST_FORM = max(len(form.split()) for form in LEGAL_FORMS)
_LAST_WORDS = frozenset(form.split()[-1] for form in LEGAL_FORMS)

# After anyascii the text is ASCII: letters and digits stay, apostrophes go ("O'Brien"
# is "obrien"; anyascii writes the Arabic ayn as a backtick), the rest separates tokens.
_SEPARATORS = {
    code: (None if chr(code) in "'`" else " ") for code in range(128) if not chr(code).isalnum()
}
_MESSRS = re.compile(r"^\s*m\s*/\s*s\b\.?")  # "M/s Acme Traders", an Indian "Messrs"
_VOWELLESS_SCRIPTS = frozenset({"ARABIC", "HEBREW", "SYRIAC"})
_VOWELS = str.maketrans("", "", "aeiouwy")
# Han and Hangul: a character is a syllable, romanised as a word of its own ("Kim Jong
# Un"); anyascii would run them together ("XiJinPing").
_SYLLABIC = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]")


@dataclass(frozen=True, slots=True)
class NormalisedName:
    tokens: tuple[str, ...]
    legal_forms: tuple[str, ...] = ()  # canonical ("ltd", "pvt ltd"), in the order written
    transliterated: bool = False  # written, at least partly, in a script other than Latin
    # written in a script that leaves short vowels out (Arabic, Hebrew, Syriac): anyascii
    # gives "mhmd" for "Mohammed", so tokens are also compared without their vowels
    vowelless: bool = False

    @property
    def is_company(self) -> bool:
        return bool(self.legal_forms)


@dataclass(frozen=True, slots=True)
class NameMatch:
    score: float  # 0-100, one decimal
    # exact, token_sort (same tokens, other order), initials, partial (tokens missing on
    # one side), fuzzy (spelling differs), transliterated (a side in another script),
    # none (nothing pairs), empty (a side has no tokens)
    method: str


def normalise(name: str) -> NormalisedName:
    """The tokens of `name`, with what was dropped that still tells something."""
    text, scripts = _to_ascii(name)
    text = text.casefold()
    if "/" in text:
        text = _MESSRS.sub(" ", text)
    tokens = [word for word in text.translate(_SEPARATORS).split() if word not in CONNECTIVES]
    tokens, legal_forms = _without_legal_forms(tokens)
    vowelless = bool(scripts & _VOWELLESS_SCRIPTS)
    if not vowelless:  # there "mr" is "Omar" (عمر) and "dr" may be "Darr"
        tokens = _without_titles(tokens)
    tokens = _with_articles_joined(tokens)
    # Interned: a list of a million names holds each token once.
    return NormalisedName(tuple(map(sys.intern, tokens)), legal_forms, bool(scripts), vowelless)


def match(a: str, b: str) -> NameMatch:
    return match_normalised(normalise(a), normalise(b))


def match_normalised(a: NormalisedName, b: NormalisedName) -> NameMatch:
    """`match` on names normalised already: screening normalises a list once."""
    left, right = a.tokens, b.tokens
    if not left or not right:
        return NameMatch(0.0, "empty")
    left, right = _joined(left, right), _joined(right, left)
    transliterated = a.transliterated or b.transliterated
    if left == right:
        return NameMatch(100.0, "transliterated" if transliterated else "exact")
    if len(left) == len(right) and sorted(left) == sorted(right):
        return NameMatch(100.0, "transliterated" if transliterated else "token_sort")
    return _aligned(left, right, transliterated, a.vowelless or b.vowelless)


def _aligned(
    left: tuple[str, ...], right: tuple[str, ...], transliterated: bool, vowelless: bool
) -> NameMatch:
    """The greedy one-to-one alignment (the module's docstring says why); this runs for
    every candidate of a screening, so it is written for speed."""
    pairs = []
    for i, x in enumerate(left):
        for j, y in enumerate(right):
            similarity = 1.0 if x == y else token_similarity(x, y, vowelless=vowelless)
            if similarity >= MIN_PAIR:
                pairs.append((similarity, _weight(x) + _weight(y), i, j))
    if not pairs:
        return NameMatch(0.0, "none")
    pairs.sort(reverse=True)  # most similar first; of as similar, the heavier pair
    used_left = used_right = 0  # bit sets of paired positions
    paired = 0.0
    initials = inexact = False
    for similarity, weight, i, j in pairs:
        if used_left >> i & 1 or used_right >> j & 1:
            continue
        used_left |= 1 << i
        used_right |= 1 << j
        paired += similarity * weight
        initials = initials or (len(left[i]) == 1) != (len(right[j]) == 1)
        inexact = inexact or similarity < 1.0
    total = _total_weight(left) + _total_weight(right)
    score = round(100 * paired / total, 1)
    if transliterated:
        return NameMatch(score, "transliterated")
    if initials:
        return NameMatch(score, "initials")
    return NameMatch(score, "fuzzy" if inexact else "partial")


def token_similarity(x: str, y: str, *, vowelless: bool = False) -> float:
    """How alike two normalised tokens are, 0-1, as `match` pairs them: 0 below MIN_PAIR.
    `vowelless`: one of them came from an abjad (Arabic, Hebrew)."""
    if x == y:
        return 1.0
    if len(x) == 1 or len(y) == 1:
        if len(x) == len(y):
            return 0.0
        return INITIAL_CREDIT if x[0] == y[0] else 0.0
    similarity = ratio(x, y, score_cutoff=100 * MIN_PAIR)
    if vowelless:
        # "mhmd" against "mohammed": "mhmd" against "mhmmd". w and y go too: they are
        # how anyascii writes the long vowels (يوسف is "ywsf", "Yusuf" is "ysf" then).
        bare_x, bare_y = x.translate(_VOWELS), y.translate(_VOWELS)
        if bare_x and bare_y:
            similarity = max(similarity, ratio(bare_x, bare_y, score_cutoff=100 * MIN_PAIR))
    return similarity / 100


def _weight(token: str) -> float:
    return INITIAL_WEIGHT if len(token) == 1 else 1.0


def _total_weight(tokens: tuple[str, ...]) -> float:
    initials = sum(len(token) == 1 for token in tokens)
    return len(tokens) - initials * (1 - INITIAL_WEIGHT)


def _joined(tokens: tuple[str, ...], others: tuple[str, ...]) -> tuple[str, ...]:
    """`tokens` with each adjacent pair that is one token of `others` written as that
    token: "abdul rahman" against "abdulrahman", "xi jin ping" against "xi jinping"."""
    if len(tokens) < 2:
        return tokens
    out: list[str] = []
    i = 0
    last = len(tokens) - 1
    while i <= last:
        if i < last and (pair := tokens[i] + tokens[i + 1]) in others:
            out.append(pair)
            i += 2
        else:
            out.append(tokens[i])
            i += 1
    return tuple(out) if len(out) < len(tokens) else tokens


def _to_ascii(name: str) -> tuple[str, frozenset[str]]:
    """`name` in ASCII, and the scripts other than Latin its letters were written in."""
    if name.isascii():
        return name, frozenset()
    parts = []
    scripts = set()
    for char in name:
        if char.isascii():
            parts.append(char)
            continue
        if char.isalpha():
            scripts.add(_script(char))
        text = anyascii(char)
        parts.append(f" {text} " if _SYLLABIC.match(char) else text)
    scripts.discard("LATIN")
    return "".join(parts), frozenset(scripts)


@lru_cache(maxsize=4096)
def _script(char: str) -> str:
    """The first word of the character's Unicode name: LATIN, CYRILLIC, ARABIC, CJK…"""
    return unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]


def _without_legal_forms(tokens: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """Legal forms are dropped only while a token of the name itself is left: a company
    called "Sa" or "Co" keeps its name."""
    found: list[str] = []
    while len(tokens) > 1 and tokens[0] in LEADING_LEGAL_FORMS:
        found.append(LEGAL_FORMS.get(tokens[0], tokens[0]))
        tokens = tokens[1:]
    trailing: list[str] = []
    while len(tokens) > 1 and tokens[-1] in _LAST_WORDS:
        for size in range(min(_LONGEST_FORM, len(tokens) - 1), 0, -1):
            form = LEGAL_FORMS.get(" ".join(tokens[-size:]))
            if form is not None:
                trailing.append(form)
                tokens = tokens[:-size]
                break
        else:
            break
    return tokens, (*found, *reversed(trailing))


def _with_articles_joined(tokens: list[str]) -> list[str]:
    """The Arabic article is written joined ("Al-Farouq", "Alfarouq") or apart ("Al
    Farouq"), and Arabic script joins it ("الفاروق" is "lfrwq"): one token each time."""
    if len(tokens) < 2 or ARTICLES.isdisjoint(tokens[:-1]):
        return tokens
    out: list[str] = []
    for token in tokens:
        if out and out[-1] in ARTICLES:
            out[-1] += token
        else:
            out.append(token)
    return out


def _without_titles(tokens: list[str]) -> list[str]:
    start = 0
    while len(tokens) - start > 1 and tokens[start] in HONORIFICS:
        start += 1
    end = len(tokens)
    while end - start > 1 and tokens[end - 1] in GENERATIONAL:
        end -= 1
    return tokens[start:end]
