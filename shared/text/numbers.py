"""English number verbalisation (cardinals, ordinals, years, decimals, currency, percent).

Only used for English; for other languages digits are left to espeak-ng, which reads them itself.
"""

from __future__ import annotations

import calendar
import re
from typing import Callable

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORD_IRREGULAR = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                  "nine": "ninth", "twelve": "twelfth"}


def _below_100(n: int) -> str:
    if n < 20:
        return _ONES[n]
    tens, ones = divmod(n, 10)
    return _TENS[tens] + ("-" + _ONES[ones] if ones else "")


def _below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    parts = []
    if hundreds:
        parts.append(_ONES[hundreds] + " hundred")
    if rest:
        parts.append(_below_100(rest))
    return " ".join(parts)


def cardinal(n: int) -> str:
    """``1234 -> 'one thousand two hundred thirty-four'``; negative numbers get 'minus'."""
    if n < 0:
        return "minus " + cardinal(-n)
    if n < 1000:
        return _below_1000(n) if n else "zero"
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    parts = []
    for value, name in _SCALES:
        if n >= value:
            parts.append(_below_1000(n // value) + " " + name)
            n %= value
    if n:
        parts.append(_below_1000(n))
    return " ".join(parts)


def ordinal(n: int) -> str:
    """``21 -> 'twenty-first'``."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-") if "-" in words.split(" ")[-1] else words.rpartition(" ")
    if last in _ORD_IRREGULAR:
        last = _ORD_IRREGULAR[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def year(n: int) -> str:
    """``1999 -> 'nineteen ninety-nine'``, ``2005 -> 'two thousand five'``, ``1900 -> 'nineteen hundred'``."""
    if not 1000 <= n <= 9999 or (2000 <= n <= 2009) or n % 1000 == 0:
        return cardinal(n)
    high, low = divmod(n, 100)
    if low == 0:
        return _below_100(high) + " hundred"
    return _below_100(high) + (" oh " + _ONES[low] if low < 10 else " " + _below_100(low))


def digits(s: str) -> str:
    return " ".join(_ONES[int(d)] for d in s)


_FRACTION_NAMES = {2: ("half", "halves"), 4: ("quarter", "quarters")}


def fraction(numerator: int, denominator: int, mixed: bool = False) -> str:
    """``3/4 -> 'three quarters'``, ``1/2 -> 'one half'``, ``2/3 -> 'two thirds'``; after a whole number
    (``mixed``) a single part takes an article: ``1 1/2 -> 'one and a half'``, ``2 1/8 -> 'two and an eighth'``."""
    one, many = _FRACTION_NAMES.get(denominator) or (ordinal(denominator), ordinal(denominator) + "s")
    if numerator == 1:
        return ("an " if one[0] in "aeiou" else "a ") + one if mixed else "one " + one
    return f"{cardinal(numerator)} {many}"


_CURRENCY = {"$": ("dollar", "dollars", "cent", "cents"), "£": ("pound", "pounds", "penny", "pence"),
             "€": ("euro", "euros", "cent", "cents")}

# an amount's thousands are groups of three ("$1,200"); a comma before one or two digits is a decimal comma, as a
# European writer means it ("€1,50" is one euro fifty, "$12,5" twelve and a half dollars), not a misplaced group (150,
# 125); any other comma ends the amount
_AMOUNT = r"(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+|,\d\d?(?!\d))?)"
_RE_CURRENCY_SCALE = re.compile(r"([$£€])\s?(" + _AMOUNT + r")\s?(thousand|million|billion|trillion)\b", re.IGNORECASE)
_RE_CURRENCY = re.compile(r"([$£€])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+)|,(\d\d?))?\b")
_RE_CURRENCY_CENTS = re.compile(r"([$£€])\s?\.(\d+)\b")  # $.50
# a scale letter directly after an amount: $20M, £1.5m, €3bn, $5k (before digits and letters are pulled apart)
_RE_CURRENCY_SUFFIX = re.compile(r"([$£€]\s?" + _AMOUNT + r")(k|mn|m|bn|b)\b", re.IGNORECASE)
_SCALE_SUFFIXES = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion"}
# ranges and signs are read on the text as written (before any number becomes words): a range of two numbers, times,
# fractions or amounts ("1990-2000", "1,000-2,000", "0.5-1.0", "9:30-11:00", "1/2-3/4", "$10-20", "$10-$20",
# "$1-2 million", "10-15%", "10%-15%", "10°C–20°C", decades "1980s-1990s"), not a chain (phone numbers, dates,
# 1-2-3) or a mixed number (5-1/2); an en dash between two numbers ("2010–2015", "7 – 8", "-5–10") is always a range
_RE_RANGE_NUMBER = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+|:\d\d|/[1-9]\d*)?)"
_RE_RANGE = re.compile(r"(?<![\w.,:/\-\u2013])(?P<cur>[$£€]?)(?P<sign_a>[-\u2212]?)" + _RE_RANGE_NUMBER.replace("(", "(?P<a>", 1) +
                       r"(?P<unit>%|°[CF]?)?(?P<decades>s)?(?P<sep>-|\s*\u2013\s*)(?:(?P=cur))?(?P<sign_b>[-\u2212]?)" +
                       _RE_RANGE_NUMBER.replace("(", "(?P<b>", 1) + r"(?(unit)(?=(?P=unit)))(?(decades)s)"
                       r"(?!(?:%|°[CF]\b|°(?![CF]\b))?(?:[\w:/\-\u2013]|[.,]\d))")
# a hyphen between numbers of different lengths after a word naming an identifier is part of it ("Room 101-2500",
# "Invoice 42-10001", "Flight UA 12-1500"), not a range
_RE_IDENTIFIER_BEFORE = re.compile(r"\b(?:rooms?|invoices?|bus|flights?(?:\s+[A-Z]{2})?|codes?|models?|serial|gates?|"
                                   r"parts?|numbers?|no\.?|ref\.?|orders?|accounts?|ids?|items?|units?|suites?|"
                                   r"routes?|din|iso)\s*#?\s*$", re.IGNORECASE)
# a version, release, build or address is no date, whatever its digits ("Release 2.1.2019", "IP 10.1.2000", also with a
# colon after the word or in the plural: "release: 2.1.2019", "IPs 10.1.2000")
_RE_VERSION_BEFORE = re.compile(r"\b(?:versions?|v|ver\.?|releases?|builds?|firmware|rev\.?|revisions?|ips?|"
                                r"[a-z]+\s+build)\s*:?\s*$", re.IGNORECASE)
_RE_SCALE_WORD = re.compile(r"\s?(?:thousand|million|billion|trillion)\b", re.IGNORECASE)
_RE_SIGNED = re.compile(r"(?<![\w.,:\-])([-+−])(?=[$£€]?\.?\d)")
_RE_BARE_DECIMAL = re.compile(r"(?<![\w.,])\.(\d+)\b")
_RE_PLURAL = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)'?s\b")  # "the 80s", "the 80's"
# a round grouped number in the plural is a rough count ("the 1,000s of fans"): 1,000s, 10,000s, 100,000s, 1,000,000s
_ROUGH_COUNTS = {value * factor: words + name + "s" for value, name in _SCALES
                 for factor, words in ((1, ""), (10, "tens of "), (100, "hundreds of "))}
_RE_LETTER_DIGIT = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])(?!(?:st|nd|rd|th|s)\b)", re.IGNORECASE)
_RE_PERCENT = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?%")
# a degree sign after a number ("-5°C", "45 °C", "1°"): "degree(s)", "Celsius" or "Fahrenheit" after; a range's
# sign is said once, after the second number ("10°–20°" reads "10 to 20°" here); "°C" / "°F" alone are read too
_RE_DEGREES = re.compile(r"(\d[\d,]*(?:\.\d+)?)\s?°(?:\s?([CF])\b)?")
# a space between a number and its degree sign or between the sign and its scale goes first ("10 °C", "10° C" ->
# "10°C"), so that a range of them is one ("10 °C–20 °C" as "10°C–20°C")
_RE_DEGREE_SIGN_SPACES = re.compile(r"(?<=\d)\s?°(?:\s?(?=[CF]\b))?")
# a degree sign with no scale between an article and a word that is not a preposition, a conjunction or a form of
# "be" is an adjective, said in the singular ("a 45° angle", "the 90° turn" -> "a forty-five degree angle");
# elsewhere the plural ("it was 45° outside", "turn 90° to the left", "a 45° or 60° cut", "the 45° of arc")
_RE_ARTICLE_BEFORE = re.compile(r"(?<![\w'])(?:a|an|the)\s+$", re.IGNORECASE)
_RE_NOUN_AFTER = re.compile(r"\s+(?!(?:of|and|or|to|in|on|at|by|for|from|with|than|as|per|is|was|are|were)\b)[a-z]")
_RE_DEGREE_SCALE = re.compile(r"°\s?([CF])\b")
_DEGREE_SCALES = {"C": " Celsius", "F": " Fahrenheit", None: ""}
_RE_ORDINAL = re.compile(r"\b(\d{1,3}(?:,\d{3})+|\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_RE_DECIMAL = re.compile(r"\b(\d[\d,]*)\.(\d+)\b")
# what is read as a year ("1990" nineteen ninety); the normaliser's footnote rule and numeric dates with hyphens or
# dots use it too
YEAR = r"1[1-9]\d\d|20\d\d"
_RE_YEAR = re.compile(r"\b(" + YEAR + r")((?:'?s)?)\b")  # "1990", "the 1990s", "the 1990's"
# South Asian grouping (lakh, crore: "1,00,000", "12,34,56,789"), regrouped in threes before it is read
_RE_INDIAN_GROUPS = re.compile(r"(?<![\d,.])\d{1,2}(?:,\d\d)+,\d{3}(?!\d|[.,]\d)")
# groups of three, the whole of a number: no "00,000" out of "1,00,000"
_RE_THOUSANDS = re.compile(r"(?<![\d,])\d{1,3}(?:,\d{3})+\b(?!,\d)")
_RE_INT = re.compile(r"\d+")
_RE_TIME = re.compile(r"\b([01]?\d|2[0-4]):([0-5]\d)\b")
# simple fractions (3/4, 1/2, and 1 1/2 or 1-1/2 after a whole number of at most three digits: "by 2030 3/4 of them"
# is a year), not part of a date or a chain (12/25/2020, 1/2/3)
_RE_FRACTION = re.compile(r"(?<![\w.,:/\-$£€])(?:(\d{1,3})(?:\s+|-))?([1-9])/([1-9]|10)(?![\w/:]|[.,]\d)")
_RE_24_7 = re.compile(r"(?<![\w.,:/\-])24/7(?![\w/:]|[.,]\d)")
# an ISO date (YYYY-MM-DD, a valid month and day) is read as a date before a range or a chain could take it:
# "2020-01-15" -> "January fifteenth, twenty twenty"
_MONTHS = ("January February March April May June July August September October November December").split()
# a day after a month's name is an ordinal ("September 11" -> "September eleventh"; "Jan. 5" is "January 5" by then);
# not a year or an amount ("June 2020", "March 3.5"), nor a day already written as an ordinal ("March 3rd")
_RE_MONTH_DAY = re.compile(r"\b(" + "|".join(_MONTHS) + r")\s+([1-9]|[12]\d|3[01])(?![\d%]|[.,:/]\d|\s*(?:st|nd|rd|th)\b)")
_RE_ISO_DATE = re.compile(r"(?<![\w.,:/\-\u2013])(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"
                          r"(?![\w:/\-\u2013]|[.,]\d)")
# a word that calls for a telephone number just before one, perhaps in quotes ("Call 555-1234", "My number is",
# 'call "555-1234"', "Tel.", "Ph.": "Ph" only with its period or colon, so that "pH 7" is no cue)
_RE_PHONE_CUE = re.compile(r"\b(?:call(?:s|ed|ing)?|(?:tele)?phone[ds]?|tel|ph(?=[.:])|dial(?:s|l?ed|l?ing)?|"
                           r"fax(?:ed)?|ring|text|ext|number)\b[.:]?\s*(?:(?:me|us|him|her|them|on|at|is)\s+){0,2}"
                           r"[\"\u201c\u201e\u00ab]?$", re.IGNORECASE)
# a numeric date with a four-digit year, its parts split by slashes, hyphens or dots (one separator throughout):
# M/D/YYYY in American English, D/M/YYYY in every other English ("3/14/1990", "3-14-1990", "14/3/1990", "14.3.1990"
# -> "March fourteenth, nineteen ninety"); the other order where it is the only valid one (13/12/1990 is the 13th of
# December anywhere); with no valid order (13/14/1990), or a two-digit year (3/14/90, which may be a fraction or a
# chain), it is left to the separators as before. With hyphens or dots, which also write chains and version numbers
# (1-2-3, 3.14.1, 2.4.3000), the year must be one the ``YEAR`` pattern reads as a year (1100-2099)
_RE_NUMERIC_DATE = re.compile(r"(?<![\w.,:/\-\u2013])(\d{1,2})(?P<sep>[/.\-])(\d{1,2})(?P=sep)([1-9]\d{3})"
                              r"(?![\w:/\-\u2013]|[.,]\d)")
# thousands grouped by spaces are one number ("10,000" from here on) when every group after the first has three
# digits and nothing that could be another group follows: SI style, with a thin, narrow no-break or no-break space
# ("10\u202f000", "1\u2009000\u00a0000"; run before NFKC makes them spaces), or with plain spaces (text that has been
# through NFKC has no thin ones left) where a later group starts with 0 ("100 000", "1 000 000": no number is written
# "000" on its own), or where one or two digits lead two groups or more ("12 345 678"); other plain spaces separate
# numbers: a count before a quantity ("2 100 dollar bills", "3 500 ml bottles"), "Rooms 101 102 103", "555 123 4567"
_GROUP_SPACES = "\u2009\u202f\u00a0"
_RE_SPACE_GROUPS = re.compile(r"(?<![\w.,])(?<!\d[ " + _GROUP_SPACES + r"])\d{1,3}(?:[ " + _GROUP_SPACES +
                              r"]\d{3})+(?!\w|,\d|[ " + _GROUP_SPACES + r"]\d)")
# a North American telephone number is read digit by digit, a pause between groups ("555-1234" -> "five five five,
# one two three four"): NNN-NNN-NNNN, NNN.NNN.NNNN, NNN NNN NNNN (one separator throughout), (NNN) NNN-NNNN, the last
# four after a country code too ("+1 555 123 4567", "1-800-555-1234"); a bare NNN-NNNN (any first digit: "Call
# 123-4567") only after a word that calls for a number (``_RE_PHONE_CUE``: "Call 555-1234", "My number is
# 555-1234", "Tel. 555-1234"). Without one it is read as a range ("pages 330-1453", "500-1000 people", and so
# "555-1234" too: "five hundred fifty-five to twelve thirty-four"): in prose a hyphen between a three- and a
# four-digit number is more often a range than an uncued local number, and "to" is at least a reading, where the
# hyphen gave neither ("five hundred fifty-five-twelve thirty-four"). A range of years or small numbers has other
# shapes ("1990-1995", "10-20"); after a currency sign it is an amount
_RE_PHONE = re.compile(r"(?<![\w.,:/\-\u2013+$£€])(?:(?:(?:\+\d{1,3}|1)[ .\-])?(?:\(\d{3}\) ?\d{3}[ \-]\d{4}|"
                       r"\d{3}(?P<sep>[ .\-])\d{3}(?P=sep)\d{4})|(?P<a>\d{3})-(?P<b>\d{4}))"
                       r"(?![\w:/\-\u2013]|[.,]\d)")


def _time(m: re.Match) -> str:
    hours, minutes = int(m.group(1)), int(m.group(2))
    if minutes == 0:
        return f"{cardinal(hours)} o'clock"
    return f"{cardinal(hours)} {'oh ' + cardinal(minutes) if minutes < 10 else _below_100(minutes)}"


def _int(s: str) -> int:
    return int(s.replace(",", ""))


def _currency(m: re.Match) -> str:
    one, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    whole, frac = _int(m.group(2)), m.group(3) or m.group(4)  # a decimal point or a decimal comma
    if frac and len(frac) > 2:  # $5.125: not cents
        return f"{cardinal(whole)} point {digits(frac)} {many}"
    out = f"{cardinal(whole)} {one if whole == 1 else many}"
    if frac:
        cents = int(frac.ljust(2, "0"))
        if cents and not whole:  # $0.50: "fifty cents", not "zero dollars and fifty cents"
            return f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}"
        if cents:
            out += f" and {cardinal(cents)} {sub_one if cents == 1 else sub_many}"
    return out


def _currency_cents(m: re.Match) -> str:
    """``$.50`` -> ``fifty cents``."""
    _, many, sub_one, sub_many = _CURRENCY[m.group(1)]
    frac = m.group(2)
    if len(frac) > 2:
        return f"point {digits(frac)} {many}"
    cents = int(frac.ljust(2, "0"))
    return f"{cardinal(cents)} {sub_one if cents == 1 else sub_many}" if cents else f"zero {many}"


def _fraction(m: re.Match) -> str:
    whole, numerator, denominator = m.group(1), int(m.group(2)), int(m.group(3))
    if not 2 <= denominator <= 10 or not numerator < denominator:  # 4/4, 3/2: not read as a fraction
        return m.group(0)
    if whole is None:
        return f" {fraction(numerator, denominator)} "
    return f" {cardinal(_int(whole))} and {fraction(numerator, denominator, mixed=True)} "


def _currency_scale(m: re.Match) -> str:
    """``$1.5 million`` -> ``one point five million dollars``."""
    amount = m.group(2)
    if re.fullmatch(r"\d+,\d\d?", amount):  # a decimal comma: €1,5 million
        amount = amount.replace(",", ".")
    spoken = _RE_DECIMAL.sub(_decimal, amount) if "." in amount else cardinal(_int(amount))
    return f"{spoken} {m.group(3).lower()} {_CURRENCY[m.group(1)][1]}"


def _decimal(m: re.Match) -> str:
    return f"{cardinal(_int(m.group(1)))} point {digits(m.group(2))}"


def _plural(words: str) -> str:
    """``nineteen ninety`` -> ``nineteen nineties``, ``four`` -> ``fours``, ``six`` -> ``sixes``."""
    head, sep, last = words.rpartition(" ")
    last = last[:-1] + "ies" if last.endswith("y") else last + "es" if last.endswith(("s", "x")) else last + "s"
    return head + sep + last


def _date(y: int, month: int, day: int) -> str:
    """``(2020, 1, 15)`` -> ``January fifteenth, twenty twenty``."""
    return f"{_MONTHS[month - 1]} {ordinal(day)}, {year(y)}"


def _iso_date(m: re.Match) -> str:
    """``2020-01-15`` -> ``January fifteenth, twenty twenty``."""
    return _date(int(m.group(1)), int(m.group(2)), int(m.group(3)))


def _valid_date(y: int, month: int, day: int) -> bool:
    return 1 <= month <= 12 and 1 <= day <= calendar.monthrange(y, month)[1]


def _numeric_date(m: re.Match, month_first: bool) -> str:
    """``3/14/1990``, ``3-14-1990`` -> ``March fourteenth, nineteen ninety`` (``14/3/1990``, ``14.3.1990`` where the
    day comes first); the other order where only it is valid; with neither, or a hyphen or dot before a year outside
    ``YEAR``, the text as written (see ``_RE_NUMERIC_DATE``)."""
    first, second, y = int(m.group(1)), int(m.group(3)), int(m.group(4))
    sep = m.group("sep")
    if sep != "/" and (not re.fullmatch(YEAR, m.group(4)) or _RE_VERSION_BEFORE.search(m.string, 0, m.start())):
        return m.group(0)
    # dots write the day first in American text too (12.5.1985 is the 12th of May); slashes and hyphens go by language
    month_first = month_first and sep != "."
    orders = ((first, second), (second, first)) if month_first else ((second, first), (first, second))
    for month, day in orders:
        if _valid_date(y, month, day):
            return f" {_date(y, month, day)} "
    return m.group(0)


def join_digit_groups(text: str) -> str:
    """``10 500`` with a thin or no-break space, or ``10 000`` and ``12 345 678`` with plain ones, -> ``10,500``,
    ...; ``3 500`` and ``101 102`` with a plain space stay two numbers (see ``_RE_SPACE_GROUPS``)."""
    def join(m: re.Match) -> str:
        groups = re.split("[ " + _GROUP_SPACES + "]", m.group(0))
        plain_ok = any(g.startswith("0") for g in groups[1:]) or (len(groups[0]) < 3 and len(groups) > 2)
        if " " in m.group(0) and not plain_ok:
            return m.group(0)
        return ",".join(groups)
    return _RE_SPACE_GROUPS.sub(join, text)


def _phone(m: re.Match) -> str:
    """``(555) 123-4567`` -> ``five five five, one two three, four five six seven``; a bare ``NNN-NNNN`` only after a
    word that calls for a number (``Call 555-1234``, ``Call 123-4567``; ``330-1453`` is left to the range rule: see
    ``_RE_PHONE``)."""
    if m.group("a") and not _RE_PHONE_CUE.search(m.string, 0, m.start()):
        return m.group(0)
    words = ", ".join(digits(group) for group in re.findall(r"\d+", m.group(0)))
    return f" {'plus ' if m.group(0).startswith('+') else ''}{words} "


def expand_phone_numbers_en(text: str) -> str:
    """Telephone numbers digit by digit (see ``_RE_PHONE``); the normaliser runs this before brackets become
    pauses, so that ``(555) 123-4567`` is still whole."""
    return _RE_PHONE.sub(_phone, text)


def _number_plural(m: re.Match) -> str:
    """``80s`` -> ``eighties``; a round grouped number is a rough count: ``1,000s`` -> ``thousands``, ``10,000s`` ->
    ``tens of thousands``, ``1,000,000s`` -> ``millions``."""
    n = _int(m.group(1))
    if "," in m.group(1) and n in _ROUGH_COUNTS:
        return _ROUGH_COUNTS[n]
    return _plural(cardinal(n))


def _year(m: re.Match) -> str:
    words = year(int(m.group(1)))
    return _plural(words) if m.group(2) else words  # 1990s -> nineteen nineties


def _minutes(x: str) -> int:
    hours, _, minutes = x.partition(":")
    return int(hours) * 60 + int(minutes or 0)


def _range_value(x: str) -> float:
    if ":" in x:
        return _minutes(x)
    numerator, _, denominator = x.replace(",", "").partition("/")
    return float(numerator) / int(denominator or 1)


def _range(m: re.Match) -> str:
    """``a-b`` -> ``a to b`` where it reads as a range: ``a < b`` and both times or both numbers, of any lengths
    (``500-1000``, ``330-1453``; not a score like 3-2, not 1-1/2, not a year range written short like 1990-91, which
    keeps its hyphen); with an en dash always. A telephone number has been read before this (``Call 555-1234``); a
    bare ``555-1234`` with no word calling for a number is read as the range it also is (see ``_RE_PHONE``). A sign
    after both is said once (``10%-15%`` -> ``10 to 15%``), an amount's currency and scale twice (``$1-2 million`` ->
    ``$1 million to $2 million``), a decade's plural twice (``1980s-1990s``). A signed number (``-5–10``) is a range
    only with an en dash."""
    cur, sign_a, a, sep, sign_b, b = m.group("cur", "sign_a", "a", "sep", "sign_b", "b")
    if "\u2013" not in sep:  # a hyphen: only where it reads as a range
        if sign_a or sign_b or (":" in a) != (":" in b) or not _range_value(a) < _range_value(b):
            return m.group(0)
        if re.match(r"0\d", a):  # a leading zero is a code or a month ("06-2025"), not a range's start
            return m.group(0)
        if len(a) != len(b) and _RE_IDENTIFIER_BEFORE.search(m.string, 0, m.start()):
            return m.group(0)
    scale = _RE_SCALE_WORD.match(m.string, m.end()) if cur else None
    s = m.group("decades") or ""
    return f"{cur}{sign_a}{a}{s}{scale.group(0) if scale else ''} to {cur}{sign_b}{b}{s}"


def _number_words(num: str) -> str:
    """``1,234.5`` -> ``one thousand two hundred thirty-four point five``."""
    return _RE_DECIMAL.sub(_decimal, num) if "." in num else cardinal(_int(num))


def _percent(m: re.Match) -> str:
    return _number_words(m.group(1)) + " percent"


def _is_degree_adjective(m: re.Match) -> bool:
    """Whether a degree sign with no scale qualifies the noun after it: ``a 45° angle``, not ``it was 45° outside``
    (see ``_RE_ARTICLE_BEFORE``)."""
    return (not m.group(2) and _RE_ARTICLE_BEFORE.search(m.string, 0, m.start()) is not None
            and _RE_NOUN_AFTER.match(m.string, m.end()) is not None)


def _degrees(m: re.Match) -> str:
    """``5°C`` -> ``five degrees Celsius``, ``1°`` -> ``one degree``, ``a 45° angle`` -> ``a forty-five degree angle``
    (``_is_degree_adjective``); a sign before is read as "minus" already."""
    singular = m.group(1) == "1" or _is_degree_adjective(m)
    return f"{_number_words(m.group(1))} {'degree' if singular else 'degrees'}{_DEGREE_SCALES[m.group(2)]}"


def _spaced(words: Callable[[re.Match], str]) -> Callable[[re.Match], str]:
    """Each number's words with a space either side: ``v2`` is not ``vtwo`` (the normaliser collapses the spaces)."""
    return lambda m: f" {words(m)} "


def expand_numbers_en(text: str, month_first: bool = True) -> str:
    """Replace every digit sequence in ``text`` by English words: telephone numbers, dates (``2020-01-15``,
    ``3/14/1990``, ``3-14-1990``; ``14/3/1990``, ``14.3.1990`` where not ``month_first``, as outside the US), times,
    amounts of money (``$1.5 million``, ``$20M``, ``$.50``), fractions (``3/4``, ``1 1/2``, ``1-1/2``), percentages,
    degrees, ordinals, decimals (``.5``), signs, ranges (``1990-2000``, ``2010–2015``, ``10%-15%``, ``500-1000``:
    "to"), years, thousands, integers."""
    return expand_numbers_en_after_phones(expand_phone_numbers_en(join_digit_groups(text)), month_first)


def expand_numbers_en_after_phones(text: str, month_first: bool = True) -> str:
    """``expand_numbers_en`` for text whose digit groups and telephone numbers have been read already
    (``join_digit_groups``, ``expand_phone_numbers_en``): the normaliser runs those two itself, at the points where
    they need the text (thin spaces before NFKC, brackets before they become pauses), and each only once."""
    text = _RE_INDIAN_GROUPS.sub(lambda m: f"{_int(m.group(0)):,}", text)
    text = _RE_ISO_DATE.sub(_spaced(_iso_date), text)
    text = _RE_NUMERIC_DATE.sub(lambda m: _numeric_date(m, month_first), text)
    text = _RE_DEGREE_SIGN_SPACES.sub("°", text)
    text = _RE_RANGE.sub(_range, text)  # on the text as written (below, a number's words are padded with spaces)
    text = _RE_SIGNED.sub(lambda m: " plus " if m.group(1) == "+" else " minus ", text)
    text = _RE_CURRENCY_SUFFIX.sub(lambda m: f"{m.group(1)} {_SCALE_SUFFIXES[m.group(2).lower()]}", text)
    text = _RE_LETTER_DIGIT.sub(" ", text)  # A4, 100km: digits and letters apart (not 4th, 1990s)
    text = _RE_TIME.sub(_spaced(_time), text)
    text = _RE_24_7.sub(" twenty-four seven ", text)
    text = _RE_FRACTION.sub(_fraction, text)
    text = _RE_CURRENCY_SCALE.sub(_spaced(_currency_scale), text)
    text = _RE_CURRENCY_CENTS.sub(_spaced(_currency_cents), text)
    text = _RE_CURRENCY.sub(_spaced(_currency), text)
    text = _RE_PERCENT.sub(_spaced(_percent), text)
    text = _RE_DEGREES.sub(_spaced(_degrees), text)
    text = _RE_DEGREE_SCALE.sub(lambda m: " degrees" + _DEGREE_SCALES[m.group(1)], text)
    text = _RE_MONTH_DAY.sub(lambda m: f"{m.group(1)} {ordinal(int(m.group(2)))}", text)
    text = _RE_ORDINAL.sub(_spaced(lambda m: ordinal(_int(m.group(1)))), text)
    text = _RE_DECIMAL.sub(_spaced(_decimal), text)
    text = _RE_BARE_DECIMAL.sub(_spaced(lambda m: f"point {digits(m.group(1))}"), text)
    text = _RE_YEAR.sub(_spaced(_year), text)
    text = _RE_PLURAL.sub(_spaced(_number_plural), text)  # the 80s, 4s and 5s, 1,000s
    text = _RE_THOUSANDS.sub(_spaced(lambda m: cardinal(_int(m.group(0)))), text)
    text = _RE_INT.sub(_spaced(lambda m: cardinal(int(m.group(0))) if len(m.group(0)) < 16 else digits(m.group(0))), text)
    text = re.sub(r" *- *", "-", text)  # a hyphen keeps its words (5-year-old, COVID-19): only the padding goes
    return re.sub(r" {2,}", " ", text).strip(" ")
