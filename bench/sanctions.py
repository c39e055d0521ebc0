"""Sanctions screening: load time, memory and latency per name for a 1,000,000-entry list.

Writes a list in OpenSanctions' targets.simple.csv format to a temporary folder: people
from seven naming cultures (Slavic with patronymics, Arabic, Indian, Chinese, Hispanic
with two surnames, English, West African), first names and surnames a few thousand
each, drawn with Zipf-like frequencies so a few are very common (as "Mohammed" or
"Ivanov" are); companies with legal forms; aliases for a third of the people
(reordered, without the middle name, in Cyrillic, another spelling); birth dates for
most people. Then loads it with `SanctionsList.from_csv` (load seconds, RSS) and
screens names one at a time on one core: half are entries' names changed as screening
requests change them (a typo, another order, an initial, a missing middle name,
another legal form, an alias; half with the birth date), half are names not on the list
(some sharing a first name or a surname with entries). Prints p50/p95/p99/max ms per
name for each run and their medians, the hit rate on the present names (the entry among
the 5 returned), why the others were missed, and how often an absent name had a
candidate.

    python bench/sanctions.py [--entries 1000000] [--queries 2000] [--runs 3] [--csv PATH]

`--csv PATH` screens an existing list (or writes the generated one there, to reuse).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path

from openenrich.verify.names import match
from openenrich.verify.sanctions import SanctionsList

HEADER = [
    "id",
    "schema",
    "name",
    "aliases",
    "birth_date",
    "countries",
    "addresses",
    "identifiers",
    "sanctions",
    "phones",
    "emails",
    "dataset",
    "first_seen",
    "last_seen",
    "last_change",
]
DATASETS = [
    "Sample Consolidated Sanctions List",
    "Sample Financial Sanctions Register",
    "Sample Export Control Entity List",
    "Sample Politically Exposed Persons",
]
PROGRAMMES = [
    f"Sample Council - Decision 20{y}/{n:02} - asset freeze"
    for y in range(15, 26)
    for n in range(1, 13)
]


def words(text: str) -> list[str]:
    return text.split()


@dataclass(frozen=True)
class Culture:
    share: float  # of the people
    first: list[str]  # real names first: they are the common ones
    last: list[str]
    onsets: list[str]  # syllables for more names of the same sound
    codas: list[str]
    surname_endings: list[str]
    countries: list[str]


CULTURES = {
    "slavic": Culture(
        0.2,
        words(
            "Ivan Sergei Dmitri Alexei Nikolai Vladimir Andrei Mikhail Viktor Yuri Oleg Pavel Igor Boris Anatoly Grigory Konstantin Roman Maxim Artem Olga Tatiana Elena Natalia Irina Svetlana Anna Maria Yulia Ekaterina Anastasia Ludmila Galina Vera Nadezhda"
        ),
        words(
            "Ivanov Smirnov Kuznetsov Popov Vasiliev Petrov Sokolov Mikhailov Novikov Fedorov Morozov Volkov Alekseev Lebedev Semenov Egorov Pavlov Kozlov Stepanov Nikolaev Orlov Andreev Makarov Zakharov Zaitsev Soloviev Borisov Yakovlev Grigoriev Romanov Vorobiev Sergeev Frolov Belov Shevchenko Kovalenko Bondarenko Tkachenko Kravchuk Melnyk"
        ),
        words("vla dmi bor gri kon sta yar svya mir rad zla lyu ale ger kir tim fil"),
        words("dimir slav mil ron tin ian sil gor dan ko nik"),
        ["ov", "ev", "in", "sky", "enko", "uk", "ich"],
        ["ru", "by", "ua", "kz"],
    ),
    "arabic": Culture(
        0.2,
        words(
            "Mohammed Ahmed Ali Omar Khalid Yusuf Ibrahim Hassan Hussein Abdullah Mahmoud Mustafa Tariq Hamza Saeed Nasser Faisal Karim Samir Walid Fatima Aisha Mariam Layla Noor Huda Zainab Salma Rania Amira"
        ),
        words(
            "Al-Rashidi Al-Masri Haddad Al-Tamimi Al-Qahtani Al-Harbi Mansour Khalil Nasser Saleh Darwish Haddad Al-Zahrani Al-Shammari Aziz Rahman Qasimi Hakimi Bakri Jaber Farouk Suleiman Othman Hamdan Najjar Barakat Abboud Sabbagh Khoury Al-Amin"
        ),
        words("ab kha sa ra ha ja na fa ma za qa ta da ba"),
        words("bir lid mid sar rim jid fiq dun mal zim ran hal"),
        ["i", "an", "ani", "awi"],
        ["sy", "iq", "lb", "ye", "ae", "sa", "eg", "ly"],
    ),
    "indian": Culture(
        0.15,
        words(
            "Rahul Amit Suresh Rajesh Vikram Sanjay Anil Sunil Ravi Arjun Deepak Manoj Ashok Vijay Ramesh Priya Anjali Kavita Sunita Neha Pooja Deepika Lakshmi Meena Rekha Asha Divya Shalini"
        ),
        words(
            "Sharma Verma Gupta Patel Singh Kumar Reddy Iyer Nair Joshi Mehta Shah Rao Chopra Malhotra Kapoor Agarwal Bhatnagar Banerjee Chatterjee Mukherjee Desai Pillai Menon Saxena Trivedi Mishra Pandey Tiwari Kulkarni"
        ),
        words("ra su vi pra shi ha de ma na ka ja ba go"),
        words("jesh nil kram deep mesh vind nath shan kant esh rup"),
        ["wal", "war", "ani", "ia", "kar"],
        ["in", "ae", "np"],
    ),
    "chinese": Culture(
        0.1,
        words(
            "Wei Jun Hao Lei Jie Tao Ming Qiang Yong Bo Hong Li Na Fang Ying Xin Yan Jing Hui Mei"
        ),
        words(
            "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang Xie Song Tang Han Feng Deng Cao Peng"
        ),
        words("zh x q sh ch j l w y h g d t b p m"),
        words("ang ing ong ei ao un ian uan ie ui ou"),
        [],
        ["cn", "hk", "tw", "sg"],
    ),
    "hispanic": Culture(
        0.12,
        words(
            "Jose Juan Carlos Luis Miguel Jorge Pedro Manuel Francisco Antonio Diego Javier Alejandro Ricardo Fernando Maria Ana Carmen Lucia Isabel Sofia Valentina Camila Gabriela"
        ),
        words(
            "Garcia Rodriguez Martinez Hernandez Lopez Gonzalez Perez Sanchez Ramirez Torres Flores Rivera Gomez Diaz Reyes Morales Cruz Ortiz Gutierrez Chavez Ramos Castillo Jimenez Vargas Romero Herrera Medina Aguilar Restrepo Quintero"
        ),
        words("al ber ca dol es fer gon her mar ro san val"),
        words("varo nando tillo rera dova zana mero cedo"),
        ["ez", "es", "ero", "ana", "illo"],
        ["mx", "co", "ve", "pa", "ar", "pe"],
    ),
    "english": Culture(
        0.13,
        words(
            "John James Robert Michael William David Richard Thomas Charles Daniel Matthew George Edward Peter Paul Mary Patricia Jennifer Linda Elizabeth Susan Sarah Margaret Emily Helen"
        ),
        words(
            "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott Green Baker Adams Nelson"
        ),
        words("ash brad chad dun fair hal kent lan mor pem ral stan wick"),
        words("ford ley ton wood by field well more ham"),
        ["son", "ton", "ley", "wood", "worth"],
        ["gb", "us", "ca", "au", "ie"],
    ),
    "west_african": Culture(
        0.1,
        words(
            "Kwame Kofi Chinedu Oluwaseun Emeka Ibrahim Musa Sani Babatunde Tunde Ngozi Amina Chiamaka Fatou Aminata Abena Efua Yaa"
        ),
        words(
            "Okafor Adeyemi Mensah Boateng Okonkwo Diallo Traore Keita Balogun Abubakar Bello Eze Nwosu Owusu Asante Danso Ogunleye Adebayo Coulibaly Toure"
        ),
        words("a o e i u"),
        words("dey kun bayo mide nwa chu gbe lu si tor"),
        ["ye", "la", "mi", "ke"],
        ["ng", "gh", "sn", "ml", "ci"],
    ),
}
# Japanese, Nordic, Greek and Hungarian names: no entry has them.
ABSENT_FIRST = words(
    "Haruto Yuki Sakura Takeshi Aiko Kenji Sigrid Astrid Lars Bjorn Ingrid Sven Eleni "
    "Dimitrios Yiannis Katerina Nikos Sofia Zsofia Laszlo Bence Eszter Gergely Reka"
)
ABSENT_LAST = words(
    "Tanaka Watanabe Yamamoto Nakamura Kobayashi Saito Lindqvist Johansson Bergstrom "
    "Nilsson Halvorsen Papadopoulos Georgiou Konstantinidis Nagy Horvath Szabo Kiss "
    "Toth Varga Molnar Farkas"
)
COMPANY_KINDS = words(
    "Trading Shipping Holdings Logistics Minerals Energy Petroleum Industries Exchange Investments Group Technologies Aviation Metals Chemicals Marine Capital Resources Imports Engineering"
)
COMPANY_WORDS = words(
    "Global Pacific Star United Eastern Atlas Delta Summit Northern Golden Crescent Meridian Oceanic Baltic Silver Phoenix Horizon Zenith Orient Pioneer Royal Falcon Cedar Emerald Sahara Caspian Arctic Nova Apex Titan"
)
LEGAL_FORMS = [
    "Ltd",
    "Limited",
    "LLC",
    "GmbH",
    "S.A.",
    "Pvt. Ltd.",
    "Inc.",
    "Corp.",
    "FZE",
    "Co., Ltd.",
    "PLC",
    "B.V.",
    "JSC",
    "OOO",
]
# Latin to Cyrillic, digraphs first: enough to write a Slavic alias as it was registered.
CYRILLIC = dict(
    zip(
        [*words("zh kh ts ch sh yu ya"), *words("a b v g d e z i k l m n o p r s t u f h y")],
        words("ж х ц ч ш ю я а б в г д е з и к л м н о п р с т у ф х ы"),  # noqa: RUF001
        strict=True,
    )
)


def zipf_weights(size: int) -> list[float]:
    return list(accumulate(1 / (rank + 1) ** 0.9 for rank in range(size)))


def invent(
    rng: random.Random, culture: Culture, count: int, endings: list[str], taken: set[str]
) -> list[str]:
    """`count` more names that sound like the culture's (one or two syllables of it, and
    for surnames maybe an ending), none of them in `taken`."""
    names: list[str] = []
    for _ in range(50 * count):
        if len(names) == count:
            return names
        name = rng.choice(culture.onsets) + rng.choice(culture.codas)
        if rng.random() < 0.6:
            name += rng.choice(culture.onsets) + rng.choice(culture.codas)
        if endings and rng.random() < 0.7:
            name += rng.choice(endings)
        name = name.capitalize()
        if name not in taken:
            taken.add(name)
            names.append(name)
    raise ValueError(f"not {count} names from these syllables")


@dataclass
class Pool:
    first: list[str]
    last: list[str]
    first_weights: list[float]
    last_weights: list[float]
    held_first: list[str]  # never on the list: the absent names
    held_last: list[str]


def pools(rng: random.Random, firsts: int, lasts: int) -> dict[str, Pool]:
    out = {}
    for key, culture in CULTURES.items():
        taken = set(culture.first) | set(culture.last)
        first = [*culture.first, *invent(rng, culture, firsts - len(culture.first), [], taken)]
        last = [
            *culture.last,
            *invent(rng, culture, lasts - len(culture.last), culture.surname_endings, taken),
        ]
        held_first = invent(rng, culture, 100, [], taken)
        held_last = invent(rng, culture, 200, culture.surname_endings, taken)
        out[key] = Pool(
            first, last, zipf_weights(len(first)), zipf_weights(len(last)), held_first, held_last
        )
    return out


def person(rng: random.Random, key: str, pool: Pool) -> tuple[list[str], list[str]]:
    """(tokens of the name, aliases)."""
    first = rng.choices(pool.first, cum_weights=pool.first_weights)[0]
    last = rng.choices(pool.last, cum_weights=pool.last_weights)[0]
    if key == "slavic":
        father = rng.choices(pool.first, cum_weights=pool.first_weights)[0]
        tokens = [first, father + ("ovich" if father[-1] not in "aeiy" else "evich"), last]
    elif key == "arabic":
        father = rng.choices(pool.first, cum_weights=pool.first_weights)[0]
        tokens = [first, father, last] if rng.random() < 0.7 else [first, last]
    elif key == "hispanic":
        second = rng.choices(pool.last, cum_weights=pool.last_weights)[0]
        tokens = [first, last, second] if rng.random() < 0.6 else [first, last]
    elif key == "chinese":
        tokens = [last, first + (rng.choice(pool.first).lower() if rng.random() < 0.5 else "")]
    elif key == "indian" and rng.random() < 0.3:
        tokens = [first, rng.choice(["Kumar", "Prasad", "Lal", "Chandra", "Nath"]), last]
    else:
        tokens = [first, last]
    aliases = []
    if rng.random() < 0.33:
        kind = rng.random()
        if kind < 0.3:
            aliases.append(" ".join([tokens[-1], *tokens[:-1]]))
        elif kind < 0.5 and len(tokens) > 2:
            aliases.append(f"{tokens[0]} {tokens[-1]}")
        elif kind < 0.75 and key == "slavic":
            aliases.append(" ".join(cyrillic(token) for token in tokens))
        else:
            aliases.append(" ".join(respelt(rng, token) for token in tokens))
    return tokens, aliases


def company(rng: random.Random) -> tuple[list[str], list[str]]:
    words = [rng.choice(COMPANY_WORDS), rng.choice(COMPANY_WORDS), rng.choice(COMPANY_KINDS)]
    if rng.random() < 0.5:  # most companies have a word of their own
        words[1] = invent(rng, rng.choice(list(CULTURES.values())), 1, [], set())[0]
    form = rng.choice(LEGAL_FORMS)
    tokens = [form, *words] if form == "OOO" else [*words, form]
    aliases = [" ".join(words)] if rng.random() < 0.2 else []
    return tokens, aliases


def cyrillic(token: str) -> str:
    text = token.lower()
    out = []
    i = 0
    while i < len(text):
        pair = text[i : i + 2]
        if len(pair) == 2 and pair in CYRILLIC:
            out.append(CYRILLIC[pair])
            i += 2
        else:
            out.append(CYRILLIC.get(text[i], text[i]))
            i += 1
    return "".join(out).capitalize()


def respelt(rng: random.Random, token: str) -> str:
    for old, new in (
        ("y", "i"),
        ("ei", "ey"),
        ("ou", "u"),
        ("ph", "f"),
        ("ov", "off"),
        ("mm", "m"),
    ):
        if old in token and rng.random() < 0.7:
            return token.replace(old, new, 1)
    return token


def typo(rng: random.Random, token: str) -> str:
    if len(token) < 4:
        return token
    i = rng.randrange(1, len(token) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # two letters swapped
        return token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    if kind == 1:  # one missing
        return token[:i] + token[i + 1 :]
    if kind == 2:  # one doubled
        return token[:i] + token[i] + token[i:]
    return token[:i] + rng.choice("aeioustnr") + token[i + 1 :]  # one replaced


@dataclass(frozen=True)
class Target:
    id: str
    names: list[str]
    birth_date: str
    company: bool


def write_list(
    path: Path, entries: int, queries: int, rng: random.Random
) -> tuple[list[Target], dict[str, Pool]]:
    """Writes the list; returns the entries the present queries are made from."""
    pool = pools(rng, firsts=400, lasts=700)
    cultures = list(CULTURES)
    shares = list(accumulate(CULTURES[key].share for key in cultures))
    chosen = set(rng.sample(range(entries), queries))
    targets = []
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for number in range(entries):
            if rng.random() < 0.15:
                tokens, aliases = company(rng)
                schema, born, countries = (
                    "Company",
                    "",
                    rng.choice(["pa", "ae", "cy", "hk", "ru", "gb"]),
                )
                entry_id = f"bench-c-{number}"
            else:
                key = rng.choices(cultures, cum_weights=shares)[0]
                tokens, aliases = person(rng, key, pool[key])
                schema, entry_id = "Person", f"bench-p-{number}"
                countries = ";".join(rng.sample(CULTURES[key].countries, rng.choice([1, 1, 2])))
                born = ""
                if rng.random() < 0.85:
                    year = rng.randint(1935, 2002)
                    born = (
                        str(year)
                        if rng.random() < 0.2
                        else f"{year}-{rng.randint(1, 12):02}-{rng.randint(1, 28):02}"
                    )
            name = " ".join(tokens)
            writer.writerow(
                [
                    entry_id,
                    schema,
                    name,
                    ";".join(aliases),
                    born,
                    countries,
                    "",
                    "",
                    rng.choice(PROGRAMMES),
                    "",
                    "",
                    ";".join(rng.sample(DATASETS, rng.choice([1, 1, 2]))),
                    "2023-02-01T00:00:00",
                    "2025-06-30T00:00:00",
                    "2024-11-12T00:00:00",
                ]
            )
            if number in chosen:
                targets.append(Target(entry_id, [name, *aliases], born, schema == "Company"))
    return targets, pool


def present_query(rng: random.Random, target: Target) -> tuple[str, str | None]:
    """A name as a screening request might spell the target's, and maybe its birth date."""
    name = target.names[0] if len(target.names) == 1 or rng.random() < 0.7 else target.names[1]
    tokens = name.split()
    if target.company:
        words = [t for t in tokens if t not in LEGAL_FORMS]
        kind = rng.random()
        if kind < 0.3:
            return " ".join(words), None
        if kind < 0.6:
            return " ".join([*words, rng.choice(LEGAL_FORMS[:8])]), None
        i = rng.randrange(len(words))
        return " ".join([*words[:i], typo(rng, words[i]), *words[i + 1 :]]), None
    kind = rng.random()
    if kind < 0.1:
        pass
    elif kind < 0.25:
        tokens = [tokens[-1], *tokens[:-1]]
    elif kind < 0.55:
        i = rng.randrange(len(tokens))
        tokens[i] = typo(rng, tokens[i])
    elif kind < 0.7:
        tokens[0] = tokens[0][0] + "."
    elif kind < 0.85 and len(tokens) > 2:
        tokens = [tokens[0], tokens[-1]]
    else:
        i = rng.randrange(len(tokens))
        tokens[i] = respelt(rng, typo(rng, tokens[i]))
    birth_date = target.birth_date if target.birth_date and rng.random() < 0.5 else None
    return " ".join(tokens), birth_date


def absent_query(rng: random.Random, pool: dict[str, Pool]) -> tuple[str, str]:
    """(kind, name) of a name not on the list: from cultures the list has none of, such a
    surname after a first name many entries have, or invented from the list's own
    syllables (sound-alikes: near many entries' names, as a real customer's may be)."""
    names = pool[rng.choice(list(CULTURES))]
    kind = rng.randrange(3)
    if kind == 0:
        return "other cultures", f"{rng.choice(ABSENT_FIRST)} {rng.choice(ABSENT_LAST)}"
    if kind == 1:
        first = rng.choices(names.first, cum_weights=names.first_weights)[0]
        return "a common first name", f"{first} {rng.choice(ABSENT_LAST)}"
    return "sound-alikes", f"{rng.choice(names.held_first)} {rng.choice(names.held_last)}"


def rss_mb() -> tuple[float, float]:
    """(resident, peak) MB of this process."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return (int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=2_000, help="half present, half absent")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--csv", type=Path, default=None, help="write the list here (kept)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as folder:
        path = args.csv or Path(folder) / "targets.simple.csv"
        print(f"writing {args.entries:,} entries to {path} …", flush=True)
        started = time.perf_counter()
        targets, pool = write_list(path, args.entries, args.queries // 2, rng)
        print(f"  {time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.0f} MB")

        before, _ = rss_mb()
        started = time.perf_counter()
        listing = SanctionsList.from_csv(path)
        load = time.perf_counter() - started
        after, peak = rss_mb()
        print(
            f"loaded {len(listing):,} entries ({listing.name_count:,} names) in {load:.1f} s; "
            f"RSS {after:.0f} MB ({after - before:+.0f} MB for the list), peak {peak:.0f} MB"
        )

    present = [(target, *present_query(rng, target)) for target in targets]
    absent = [absent_query(rng, pool) for _ in range(args.queries - len(present))]
    figures: dict[str, list[float]] = {"p50": [], "p95": [], "p99": [], "max": []}
    for run in range(args.runs):
        timings = []
        hits = 0
        misses: Counter[str] = Counter()
        examples: dict[str, str] = {}
        absent_with_candidates: Counter[str] = Counter()
        for target, name, birth_date in present:
            started = time.perf_counter()
            candidates = listing.screen(name, birth_date=birth_date)
            timings.append(time.perf_counter() - started)
            if any(candidate.id == target.id for candidate in candidates):
                hits += 1
            else:
                reason = why_missed(listing, target, name, birth_date)
                misses[reason] += 1
                examples.setdefault(reason, f"{name!r} for {target.names[0]!r}")
        for kind, name in absent:
            started = time.perf_counter()
            candidates = listing.screen(name)
            timings.append(time.perf_counter() - started)
            absent_with_candidates[kind] += bool(candidates)
        ms = [seconds * 1000 for seconds in timings]
        row = {
            "p50": percentile(ms, 0.5),
            "p95": percentile(ms, 0.95),
            "p99": percentile(ms, 0.99),
            "max": max(ms),
        }
        for label, value in row.items():
            figures[label].append(value)
        print(
            f"run {run + 1}: {len(ms):,} names, ms per name "
            + "  ".join(f"{label} {value:.2f}" for label, value in row.items())
        )
        if run == 0:
            print(
                f"  present: {hits / len(present):.1%} hit (the entry among the 5 returned)"
                + "".join(f"; {count} {reason}" for reason, count in misses.most_common())
            )
            for reason, example in examples.items():
                print(f"    {reason}: e.g. {example}")
            kinds = Counter(kind for kind, _ in absent)
            print(
                "  absent, with a candidate ≥ 70: "
                + "; ".join(
                    f"{kind} {absent_with_candidates[kind] / count:.1%} of {count}"
                    for kind, count in kinds.items()
                )
            )
    print(
        "median of runs, ms per name: "
        + "  ".join(f"{label} {statistics.median(values):.2f}" for label, values in figures.items())
    )


def why_missed(listing: SanctionsList, target: Target, name: str, birth_date: str | None) -> str:
    best_score = max(match(name, entry_name).score for entry_name in target.names)
    if best_score < 70 - (5 if birth_date else 0):
        return "scored below the threshold"
    wider = listing.screen(name, birth_date=birth_date, limit=10_000)
    scores = {candidate.id: candidate.score for candidate in wider}
    if target.id in scores:  # below the 5th, so namesakes scored as high or higher
        if scores[target.id] == wider[4].score:
            return "tied with namesakes (as good a match: the 5 shown are others)"
        return "outranked by better matches"
    return "not found by the index"


if __name__ == "__main__":
    main()
