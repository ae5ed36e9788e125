"""Text normalisation shared by the phoneme and character frontends.

Decisions (see ``shared/text/README.md``):

* Unicode NFKC, typographic quotes/dashes/ellipses mapped to ASCII-ish forms, whitespace collapsed.
* Case is preserved (espeak-ng uses it, e.g. for acronyms); the character frontend lowercases itself.
* For English (``en*``) digits, currency, percent, ordinals, years and common abbreviations are spelled
  out; other languages keep digits, which espeak-ng reads in the right language.
* Prosodic punctuation ``, . ! ? ; :`` is kept (one mark per run, no space before it); brackets and
  dashes become commas (in English an en dash between two numbers is a range: "2010–2015", "10%–15%" -> "... to
  ..."), quotes are dropped.
* Vulgar fractions become ASCII ones apart from a whole number before NFKC ("1½" -> "1 1/2", not "11⁄2").
* An en dash at the start or after a space or "(" and right before a number is a minus sign ("–5" -> "-5").
* English only: superscripts are read before NFKC makes them digits ("km²" -> "km squared", "10⁶" -> "10 to the power
  of 6", a footnote mark "word¹", "1990¹" or "25%¹" goes); digits grouped by a thin or no-break space (U+2009,
  U+202F, U+00A0) are one number, plain spaces separate numbers ("Rooms 101 102", "3 500 ml") unless a group after
  the first starts with 0 ("10 000") or one or two digits lead two groups or more ("12 345 678"); telephone numbers
  are read digit by digit ("(555) 123-4567", "Tel. 555-1234": "telephone ..."); a hyphen between two numbers, the
  smaller first, is a range of any lengths ("500-1000"); numeric dates with slashes or hyphens ("3/14/1990",
  "3-14-1990") are M/D/YYYY in ``en-us``, D/M/YYYY in other English, with dots ("14.3.1990") D.M.YYYY in every
  English (none after a version, release, build or IP word); a degree sign between an article
  and a noun is singular ("a 45° angle" -> "a forty-five degree angle"); acronyms and academic degrees lose their
  periods ("U.S.A." -> "USA", "M.Sc." -> "MSc"); "#", "<", ">" and a spaced hyphen between numbers are read where
  they have one reading ("#5", "C#", "3 < 5", "3 - 2"); Roman numerals II-XXXIX after a counting word ("World War
  II" -> "two") or a name ("Henry VIII" -> "the eighth"); a month's abbreviation before a number is the month.
"""

from __future__ import annotations

import re
import unicodedata

from shared.text.numbers import (YEAR, cardinal, expand_numbers_en_after_phones, expand_phone_numbers_en,
                                 join_digit_groups, ordinal)

PUNCTUATION = ",.!?;:"
"""Marks kept as tokens by every frontend (they carry pauses and intonation)."""

_ABBREVIATIONS_EN = {
    "mr": "mister", "mrs": "misses", "ms": "miz", "prof": "professor", "jr": "junior", "sr": "senior",
    "capt": "captain", "col": "colonel", "gen": "general", "lt": "lieutenant", "sgt": "sergeant", "rev": "reverend",
    "hon": "honorable", "gov": "governor", "co": "company", "ltd": "limited", "inc": "incorporated", "mt": "mount",
    "ft": "fort", "vs": "versus", "etc": "et cetera", "approx": "approximately", "dept": "department",
    "est": "established",
}
# these come before a name or a number ("Mr. Smith", "vs. Frazier"): a capital after them does not start a sentence
_PREFIX_ABBREVIATIONS_EN = {"mr", "mrs", "ms", "dr", "prof", "capt", "col", "gen", "lt", "sgt", "rev", "hon", "gov",
                            "mt", "ft", "vs", "approx", "est"}
# titles that never come after a number: "5 ms" is a unit (see _UNITS_EN), "5 Mr." no title
_NOT_AFTER_NUMBER_EN = {"mr", "mrs", "ms"}
_RE_DIGIT_AT_END = re.compile(r"\d\s*$")
# a title before a name, a street after a street's name: "St. John", "Main St."; "Dr. Smith", "Elm Dr."; with
# neither, the last word ("the St. corner", "the Dr. said")
_TITLE_OR_STREET_EN = {"st": ("saint", "street", "street"), "dr": ("doctor", "drive", "doctor")}
_CLOSERS = ")]}\"'\u2019\u201d\u00bb"
# capitalised words that start a sentence rather than name a place or someone: after "Elm Dr." they make it a
# street; before it, a sentence's first word that is not one of them is a street's name ("Sunset Dr. is closed", but
# "The Dr. is in", "Ask Dr. about it")
_SENTENCE_OPENERS_EN = frozenset(
    "A An The This That These Those There Then It Its I We You He She They My Our Your His Her Their In On At By For "
    "From To With After Before When While If As But And Or So Yet Turn Take Go Head Continue Ask Call See Visit Meet "
    "Tell Thank Thanks Dear Hi Hello Welcome Please Yes No Oh Is Are Was Were Do Does Did Can Could Will Would Should "
    "Shall May Might Must Where Why How What Who Whom Whose Which Sorry Hey Let Now Today".split())
_RE_ABBREV_EN = re.compile(r"\b(" + "|".join([*_ABBREVIATIONS_EN, *_TITLE_OR_STREET_EN]) + r")\.(?=[\s,;:!?" +
                           re.escape(_CLOSERS) + r"]|$)", re.IGNORECASE)
# units after a number: "6 ft. 2 in." (feet, inches), "5 sec", "10 mins.", "20 ms" (not "miz"); "in" only with its
# period ("5 in the box" is not inches), "ms" only in lower case (milliseconds are never "MS")
_UNITS_EN = {"ft": ("foot", "feet"), "in": ("inch", "inches"), "sec": ("second", "seconds"),
             "secs": ("second", "seconds"), "min": ("minute", "minutes"), "mins": ("minute", "minutes"),
             "hr": ("hour", "hours"), "hrs": ("hour", "hours"), "ms": ("millisecond", "milliseconds")}
_RE_UNIT_EN = re.compile(r"(?<=\d)\s*(?:(ft|secs?|mins?|hrs?|(?-i:ms))\b(\.)?|(in)(\.))(?=[\s,;:!?" +
                         re.escape(_CLOSERS) + r"]|$)", re.IGNORECASE)
_RE_SINGULAR = re.compile(r"(?:^|[^\w.,/])1\s*$")
_RE_EG = re.compile(r"\be\.g\.", re.IGNORECASE)
_RE_IE = re.compile(r"\bi\.e\.", re.IGNORECASE)
# an acronym's periods would be sentence ends ("U.S.A. is big" is three of them): "USA", "PhD"; single letters upper
# case ("p.s." -> "PS", which espeak-ng spells); after e.g., i.e. and a.m. after an hour, which are read before this
_RE_ACRONYM = re.compile(r"\b(?:[A-Za-z]\.){2,}(?!\w)|\b[A-Z][a-z]\.(?:[A-Z]\.)+(?!\w)")
# academic degrees the acronym rule does not take ("M.Sc.", whose periods espeak-ng reads as sentence ends): as they
# are said, in the spelling espeak-ng reads so ("MSc" em-ess-see, "MPhil" em-phil, "B Ed" not "bed", "EDD" not "ed-d")
_DEGREES_EN = {"M.Sc.": "MSc", "B.Sc.": "BSc", "D.Sc.": "DSc", "M.Phil.": "MPhil", "D.Phil.": "DPhil",
               "B.Phil.": "BPhil", "M.Eng.": "MEng", "B.Eng.": "BEng", "M.Ed.": "M Ed", "B.Ed.": "B Ed",
               "Ed.D.": "EDD", "LL.B.": "LLB", "LL.M.": "LLM", "LL.D.": "LLD", "M.Res.": "MRes"}
_RE_DEGREE_EN = re.compile(r"\b(?:" + "|".join(map(re.escape, _DEGREES_EN)) + r")(?!\w)")
# a.m. / p.m. after an hour ("9 a.m.", "9am", "10:30 PM", "12:00pm"): "AM" / "PM", which espeak-ng spells out (its
# "a.m." is two letters with a pause after each, its "am" the verb); ":00" before it goes ("nine AM", not "nine o'clock
# AM"); a range of two such times reads "to" ("9 a.m.–5 p.m.", "9am-5pm")
_RE_MERIDIEM = re.compile(r"(\d)(?::00)?\s?([AaPp])\.?\s?[Mm]\b(\.?)")
_RE_MERIDIEM_RANGE = re.compile(r"(\d [AP]M)\s*[-\u2013]\s*(?=\d)")
# abbreviations that mean a reference only before a number ("No. 5", "pp. 10-12", "Fig. 3"; otherwise "I said no."
# ends a sentence and "a ripe fig." is the fruit)
_BEFORE_NUMBER_EN = {"p": "page", "pp": "pages", "fig": "figure", "figs": "figures", "eq": "equation",
                     "eqs": "equations", "sec": "section", "secs": "sections", "ch": "chapter", "chap": "chapter",
                     "vol": "volume", "vols": "volumes",
                     # a month before a day or a year ("Jan. 5", "Sept. 11, 2001"); elsewhere "Jan." may be a name
                     # and "Mar." a verb
                     "jan": "January", "feb": "February", "mar": "March", "apr": "April", "jun": "June", "jul": "July",
                     "aug": "August", "sep": "September", "sept": "September", "oct": "October", "nov": "November",
                     "dec": "December"}
_RE_BEFORE_NUMBER_EN = re.compile(r"\b(" + "|".join(_BEFORE_NUMBER_EN) + r")\.(?=\s*\d)", re.IGNORECASE)
# abbreviations that call for a number, before one ("Tel. 555-1234", "tel.: (555) 123-4567", "Ph. +1 555 123 4567",
# "No. 5"): "telephone", "phone", "number", their period no sentence end; read before the telephone numbers, for which
# the words are cues (numbers.py's ``_RE_PHONE_CUE``: "Phone No. 555-1234"). "Tel" without a period too ("Tel:
# 555-1234", which espeak-ng would say as the syllable "tel"); "Ph" only with a period or a colon and in these cases
# ("pH 7" is no phone); "No" only with its period ("I said no 5 times"). A space after: "No.5-7" is "number 5-7", a
# range
_RE_NUMBER_CUE_EN = re.compile(r"\b(?:(?i:(tel))\.?|(Ph|ph)(?:\.|(?=:))|(?i:(no))\.)(?=:?\s*[(+]?\d)")
_NUMBER_CUES_EN = ("telephone", "phone", "number")  # by the group that matched
# Roman numerals of two or more letters from II to XXXIX (espeak-ng says "roman two"): a number after a word that
# counts ("World War II", "Chapter IV", "Type II", "CHAPTER XII"); a regnal ordinal after a capitalised name ("Henry
# VIII" -> "Henry the eighth", "Elizabeth II", "John Paul II"). Single letters ("I", "V", "X") and anything else stay
_ROMAN = r"(?=[IVX]{2,}\b)X{0,3}(?:IX|IV|V?I{0,3})"
_ROMAN_END = r"\b(?=['\u2019]s\b|(?!['\u2019]?\w))"  # a word's end, or a possessive's ("Henry VIII's wives")
_ROMAN_COUNTERS = ("war|chapter|part|act|book|volume|vol\\.|phase|stage|level|type|class|grade|round|article|section|"
                   "scene|episode|season|unit|schedule|appendix|annex|psalm|canto|title|tier|category|apollo")
_RE_ROMAN_COUNT = re.compile(r"\b((?i:" + _ROMAN_COUNTERS + r"))\s+(" + _ROMAN + r")" + _ROMAN_END)
_RE_ROMAN_REGNAL = re.compile(r"\b([A-Z][a-z]+)\s+(" + _ROMAN + r")" + _ROMAN_END)
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}

# before NFKC, which makes "1½" "11⁄2": a vulgar fraction is an ASCII one, apart from the digits around it
_VULGAR_FRACTIONS = {
    "\u00bc": "1/4", "\u00bd": "1/2", "\u00be": "3/4", "\u2150": "1/7", "\u2151": "1/9", "\u2152": "1/10",
    "\u2153": "1/3", "\u2154": "2/3", "\u2155": "1/5", "\u2156": "2/5", "\u2157": "3/5", "\u2158": "4/5",
    "\u2159": "1/6", "\u215a": "5/6", "\u215b": "1/8", "\u215c": "3/8", "\u215d": "5/8", "\u215e": "7/8",
}
_RE_VULGAR = re.compile("[" + "".join(_VULGAR_FRACTIONS) + "]")
# before NFKC, which makes "10⁶" "106" and "km²" "km2" (English): "²"/"³" after a word of one or two letters, a unit
# or a variable ("km²", "ft³", "x²", "mc²"), read "squared"/"cubed"; a superscript number after a digit is a power
# ("10⁶", "10⁻³", "2¹⁰"), except an unsigned one after a year (1100-2099, "in 1990¹ the"), which is a footnote mark
# as one after any other word, after "%" or after punctuation is, and goes ("footnote¹", "25%²", "the end.²"); a
# footnote mark after any other number still reads as a power; elsewhere NFKC makes it a digit as before. So "2048²"
# (2048 is in the year range) is "twenty forty-eight", read as a year either way: nothing around it tells a square of
# a year-sized number from a footnote on a year ("2048² pixels", "in 1990² the war"; both a number, a mark, a word),
# and a lost "squared" costs less than a "squared" read into a sentence about history
_SUPERSCRIPTS = "\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
_SUPERSCRIPT_DIGITS = str.maketrans(_SUPERSCRIPTS + "\u207b\u207a", "0123456789-+")
_RE_SQUARED_UNIT = re.compile(r"(?<![^\W\d_])([^\W\d_]{1,2})([\u00b2\u00b3])(?![" + _SUPERSCRIPTS + "])")
_RE_POWER = re.compile(r"(?<=\d)[\u207a\u207b]?[" + _SUPERSCRIPTS + "]+")
_RE_FOOTNOTE_MARK = re.compile(r"(?<=[^\W\d_]|[.,;:!?%'\"\u2019\u201d])[" + _SUPERSCRIPTS + "]+")
_RE_YEAR_FOOTNOTE = re.compile(r"(?<![\w.,])(" + YEAR + ")[" + _SUPERSCRIPTS + "]+")
# characters the character map makes spaces, made spaces before the digit groups and telephone numbers are read
# (English), as they are by then: "10_000", "555_123_4567" as "10 000", "555 123 4567"
_RE_SPACE_LIKE = re.compile(r"[\t\n\r_*~|]")
_CHAR_MAP = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "`": "'", "\u00b4": "'",
    "\u201c": "", "\u201d": "", "\u201e": "", "\u00ab": "", "\u00bb": "", '"': "",
    "\u2044": "/", "\u2014": " , ", "\u2015": " , ", "(": " , ", ")": " , ", "[": " , ", "]": " , ", "{": " , ",
    "}": " , ",
    "\u2026": ".", "\u00a1": "", "\u00bf": "", "\t": " ", "\n": " ", "\r": " ", "\u00a0": " ",
    "_": " ", "*": " ", "~": " ", "|": " ",
    # invisible: a soft hyphen, zero-width space, word joiner, BOM ("Hello\u00adworld" lost its "w" in espeak-ng);
    # the modifier-letter apostrophe of "donʼt" (read letter by letter) is an apostrophe
    "\u00ad": "", "\u200b": "", "\u2060": "", "\ufeff": "", "\u02bc": "'",
}
_SYMBOLS_EN = {"&": " and ", "+": " plus ", "@": " at ", "=": " equals ", "/": " slash "}
# "#" (English, before the numbers are words): a note's sharp after a single capital A-G ("C#", "F#m"), "number"
# before a number ("#5"), "hashtag" before a word ("#tbt"); elsewhere it goes ("press #": "pound" in America, "hash"
# in Britain)
_RE_SHARP = re.compile(r"(?<!\w)([A-G])#")
_RE_HASH_NUMBER = re.compile(r"#\s?(?=\d)")
_RE_HASHTAG = re.compile(r"#(?=[^\W\d_])")
# "<" and ">" (and "<=", ">=") between spaces or numbers ("3 < 5", "x >= 2", "1<2"), not in "<b>" or "->"
_RE_LESS_GREATER = re.compile(r"(?<=[\s\d])([<>])(=?)(?=[\s\d])")
# a spaced hyphen between two numbers is not a pause: a subtraction ("3 - 2 = 1", "10% - 5%"), or a range where the
# smaller number comes first and no "=" follows ("ages 10 - 15", "1990 - 2000", "10 °C - 20 °C", as "10-15" and
# "10 – 15" are)
_RE_SPACED_MINUS = re.compile(r"(?<![\w.,:/\-])(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(%|\s?°(?:\s?[CF]\b)?|)"
                              r"\s+-\s+(?=[$£€]?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?))")
_RE_SPACES = re.compile(r"\s+")
_RE_SPACE_BEFORE_PUNCT = re.compile(r"\s+([" + re.escape(PUNCTUATION) + r"])")
_RE_PUNCT_RUN = re.compile(r"([" + re.escape(PUNCTUATION) + r"])[" + re.escape(PUNCTUATION) + r"\s]*(?=[" +
                           re.escape(PUNCTUATION) + r"])")
_RE_SPACED_HYPHEN = re.compile(r"\s-+\s|\s-+$|^-+\s|--+")
# an en dash is a pause, except (in English) between two numbers (10–15, 10%–15%), which numbers.py reads as a range
_RE_EN_DASH = re.compile(r"\u2013")
_RE_EN_DASH_RANGE = re.compile(r"(?:(?<=[\d%°])|(?<=\ds)|(?<=°[CF])|(?<=° [CF]))\s*\u2013\s*(?=[$£€]?[-\u2212]?\d)")
_RE_EN_DASH_NOT_RANGE = re.compile(r"(?<![\d%°])(?<!\ds)(?<!°[CF])(?<!° [CF])\u2013|\u2013(?![$£€]?[-\u2212]?\d)")
# an en dash for a minus sign (every language): at the start, after a space or "(", right before a number ("It was –5
# degrees", "(–3)"); not after a number ("10 –15" stays a range in English, a pause elsewhere)
_RE_EN_DASH_MINUS = re.compile(r"(?<![^\s(])\u2013(?=[$£€]?\d)")
_RE_NUMBER_AT_END = re.compile(r"(?:[\d%°]|\ds|° ?[CF])\s*$")


def _ends_sentence(rest: str) -> bool:
    """Whether an abbreviation's period followed by ``rest`` ends the text or a sentence (a capitalised word next)."""
    rest = rest.lstrip(_CLOSERS)
    if not rest.strip():
        return True
    if not rest[0].isspace():
        return False
    return rest.lstrip().lstrip("([{\"'\u2018\u201c\u00ab")[:1].isupper()


def _after_capitalised_word(before: str) -> bool:
    """Whether the word just before is capitalised and not followed by a pause, and, if it is its sentence's first,
    not a word that starts sentences ("on Main St.", "Sunset Dr. is", not "Visit St.", "The Dr." or "Thanks, Dr.")."""
    before = before.rstrip()
    m = re.search(r"(\S+)$", before)
    word = m.group(1).lstrip("([{\"'\u2018\u201c\u00ab") if m else ""
    if not word[:1].isupper() or word[-1] in ",;:":
        return False
    earlier = before[:m.start()].rstrip()
    return (bool(earlier) and earlier[-1] not in ".!?:") or word not in _SENTENCE_OPENERS_EN


def _en_dash_minus(m: re.Match) -> str:
    """``–5`` -> ``-5`` unless a number comes just before the dash (see ``_RE_EN_DASH_MINUS``)."""
    return m.group(0) if _RE_NUMBER_AT_END.search(m.string, 0, m.start()) else "-"


def _superscripts(text: str) -> str:
    """``km²`` -> ``km squared``, ``10⁶`` -> ``10 to the power of 6``, ``footnote¹`` -> ``footnote`` (English)."""
    text = _RE_SQUARED_UNIT.sub(lambda m: m.group(1) + (" squared" if m.group(2) == "\u00b2" else " cubed"), text)
    text = _RE_YEAR_FOOTNOTE.sub(r"\1", text)  # "1990¹": a footnote mark, not a power
    text = _RE_POWER.sub(lambda m: " to the power of " + m.group(0).translate(_SUPERSCRIPT_DIGITS) + " ", text)
    return _RE_FOOTNOTE_MARK.sub("", text)


def _acronym_ends_sentence(rest: str) -> bool:
    """Whether an acronym's last period followed by ``rest`` also ends the sentence: at the end of the text or before
    a capitalised word that starts sentences ("in the U.S. The"), not before a name ("U.S. Army", "J.K. Rowling")."""
    next_word = re.match(r"[\s" + re.escape(_CLOSERS) + r"]*([A-Za-z]+)", rest)
    return _ends_sentence(rest) and (not next_word or next_word.group(1) in _SENTENCE_OPENERS_EN)


def _acronym(m: re.Match) -> str:
    """``U.S.A.`` -> ``USA``, keeping one period where it also ends the sentence (``_acronym_ends_sentence``)."""
    letters = m.group(0).replace(".", "")
    if len(letters) == m.group(0).count("."):  # single letters: "u.s." is "US", not the word "us"
        letters = letters.upper()
    return letters + "." if _acronym_ends_sentence(m.string[m.end():]) else letters


def _degree(m: re.Match) -> str:
    """``M.Sc.`` -> ``MSc`` (see ``_DEGREES_EN``), keeping one period where it also ends the sentence."""
    words = _DEGREES_EN[m.group(0)]
    return words + "." if _acronym_ends_sentence(m.string[m.end():]) else words


def _spaced_minus(m: re.Match) -> str:
    """``3 - 2 = 1`` -> ``3 minus 2 = 1``; ``10 - 15``, ``10 °C - 20 °C`` -> ``10–15``, ``10 °C–20 °C`` (a range, see
    ``_RE_SPACED_MINUS``); otherwise (a score, "won 3 - 2") the hyphen stays a pause."""
    a, b = (float(x.replace(",", "")) for x in m.group(1, 3))
    if "=" in m.string[m.end():]:
        return m.group(1) + m.group(2) + " minus "
    return m.group(1) + m.group(2) + ("\u2013" if a < b else " - ")


def _number_cue(m: re.Match) -> str:
    """``Tel.`` -> ``telephone``, ``Ph.`` -> ``phone``, ``No.`` -> ``number`` before a number (see
    ``_RE_NUMBER_CUE_EN``)."""
    return _NUMBER_CUES_EN[m.lastindex - 1] + ("" if m.string.startswith(":", m.end()) else " ")


def _less_greater(m: re.Match) -> str:
    words = " less than " if m.group(1) == "<" else " greater than "
    return words + "or equal to " if m.group(2) else words


def _meridiem(m: re.Match) -> str:
    """``9 a.m.`` -> ``9 AM``, keeping the period where it also ends the sentence."""
    end = "." if m.group(3) and _ends_sentence(m.string[m.end():]) else ""
    return f"{m.group(1)} {m.group(2).upper()}M{end}"


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[c] for c in numeral]
    return sum(-v if v < w else v for v, w in zip(values, values[1:] + [0]))


def _roman_count(m: re.Match) -> str:
    """``Chapter IV`` -> ``Chapter four``."""
    return f"{m.group(1)} {cardinal(_roman_value(m.group(2)))}"


def _roman_regnal(m: re.Match) -> str:
    """``Henry VIII`` -> ``Henry the eighth`` (a sentence's first word, "Is II ...", is no name)."""
    if m.group(1) in _SENTENCE_OPENERS_EN:
        return m.group(0)
    return f"{m.group(1)} the {ordinal(_roman_value(m.group(2)))}"


def _name_next(rest: str, capital_next: bool) -> bool:
    """Whether the capitalised word after an abbreviation names someone or a place, not starts a sentence."""
    next_word = re.match(r"[\s" + re.escape(_CLOSERS) + r"]*([A-Za-z]+)", rest)
    return capital_next and not (next_word and next_word.group(1) in _SENTENCE_OPENERS_EN)


def _abbreviation(m: re.Match) -> str:
    key, rest = m.group(1).lower(), m.string[m.end():]
    if key in _NOT_AFTER_NUMBER_EN and _RE_DIGIT_AT_END.search(m.string, 0, m.start()):  # "5 Ms.": no title
        return m.group(1) + "." if _ends_sentence(rest) else m.group(1)
    final = _ends_sentence(rest)  # the text ends, or a capitalised word follows
    capital_next = final and bool(rest.strip(_CLOSERS + " "))
    if key in _TITLE_OR_STREET_EN:  # St. John, Dr. Smith; Main St., Elm Dr.; 5th St., the Dr. said
        title, street, default = _TITLE_OR_STREET_EN[key]
        name_next = _name_next(rest, capital_next)
        # after a name: a street ("on Elm Dr. It is"), unless a name follows too ("Surgeon General Dr. Murthy")
        if _after_capitalised_word(m.string[:m.start()]) and not name_next:
            words = street
        elif capital_next:
            return title
        else:
            words = default
        return words + "." if final else words
    words = _ABBREVIATIONS_EN[key]
    if key == "ft" and not _name_next(rest, capital_next):  # "Ft. Worth", but "six ft. tall", "a few ft. away"
        return "feet." if final else "feet"
    if capital_next:  # not "Mr. Smith", not "Acme Co. Ltd."
        after = _RE_ABBREV_EN.match(rest.lstrip())
        if key in _PREFIX_ABBREVIATIONS_EN or (after and after.group(1).lower() not in _PREFIX_ABBREVIATIONS_EN):
            return words
    if final:
        return words + "."
    return words


def _unit(m: re.Match) -> str:
    one, many = _UNITS_EN[(m.group(1) or m.group(3)).lower()]
    word = one if _RE_SINGULAR.search(m.string[:m.start()]) else many
    period = m.group(2) or m.group(4)
    return f" {word}." if period and _ends_sentence(m.string[m.end():]) else f" {word}"


def is_english(language: str) -> bool:
    return language.lower().startswith("en")


def is_month_first(language: str) -> bool:
    """Whether numeric dates put the month first (M/D/YYYY): American English (``en-us``, ``en-US-nyc``); every other
    English (``en``, which espeak-ng speaks British, ``en-gb``, ``en-GB-x-rp``, ``en-029``) puts the day first."""
    return re.match(r"en[-_]us(?![a-z0-9])", language.lower()) is not None


def normalize_text(text: str, language: str = "en-us") -> str:
    """Normalise one sentence; see the module docstring. Returns '' for text with nothing to say."""
    english = is_english(language)
    text = _RE_VULGAR.sub(lambda m: f" {_VULGAR_FRACTIONS[m.group(0)]} ", text)
    if english:
        # before NFKC makes a thin space a space
        text = join_digit_groups(_RE_SPACE_LIKE.sub(" ", _superscripts(text)))
    text = unicodedata.normalize("NFKC", text)
    if english:
        # "Tel.", "No." and "#" before a number: words that call for a telephone number, read before it
        text = _RE_NUMBER_CUE_EN.sub(_number_cue, text)
        text = _RE_HASHTAG.sub("hashtag ", _RE_HASH_NUMBER.sub("number ", _RE_SHARP.sub(r"\1 sharp ", text)))
        text = expand_phone_numbers_en(text)  # before "(555) 123-4567" loses its brackets
    text = _RE_EN_DASH_MINUS.sub(_en_dash_minus, text)  # before "(" becomes a pause
    text = "".join(_CHAR_MAP.get(c, c) for c in text)
    if english:
        text = _RE_MERIDIEM_RANGE.sub(r"\1 to ", _RE_MERIDIEM.sub(_meridiem, text))
        text = _RE_SPACED_MINUS.sub(_spaced_minus, text)
        text = _RE_EN_DASH_NOT_RANGE.sub(" , ", _RE_EN_DASH_RANGE.sub("\u2013", text))
    else:
        text = _RE_EN_DASH.sub(" , ", text)
    text = _RE_SPACED_HYPHEN.sub(" , ", text)
    if english:
        text = _RE_EG.sub("for example", text)
        text = _RE_IE.sub("that is", text)
        text = _RE_ACRONYM.sub(_acronym, _RE_DEGREE_EN.sub(_degree, text))
        text = _RE_ROMAN_REGNAL.sub(_roman_regnal, _RE_ROMAN_COUNT.sub(_roman_count, text))
        # units first: "30 sec. 2 sets" is seconds (after a number), "Sec. 2" a section (before one only)
        text = _RE_UNIT_EN.sub(_unit, text)
        text = _RE_BEFORE_NUMBER_EN.sub(lambda m: _BEFORE_NUMBER_EN[m.group(1).lower()] + " ", text)
        text = _RE_ABBREV_EN.sub(_abbreviation, text)
        text = _RE_LESS_GREATER.sub(_less_greater, text)
        # the digit groups and telephone numbers were read above, where they had to be
        text = expand_numbers_en_after_phones(text, month_first=is_month_first(language))
        text = _RE_EN_DASH.sub(" , ", text)  # one numbers.py did not read as a range (a chain: 1–2–3)
        for sym, word in _SYMBOLS_EN.items():
            text = text.replace(sym, word)
        text = text.replace("#", " ")
    text = _RE_SPACES.sub(" ", text).strip()
    text = _RE_SPACE_BEFORE_PUNCT.sub(r"\1", text)
    # keep the strongest-looking mark of a run: the last one ("?!" -> "!", ",." -> ".")
    text = _RE_PUNCT_RUN.sub("", text)
    text = text.lstrip(PUNCTUATION + " ")
    return _RE_SPACES.sub(" ", text).strip()
