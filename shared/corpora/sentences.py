"""A deterministic English sentence generator for the espeak-ng corpus (templates + word lists, ours).

The word lists are chosen for phonetic variety: together they contain every phone espeak-ng's en-us
voice produces in ordinary words (including the rarer ʒ ɔɪ ʊɹ aɪɚ aɪə iə x n̩ ʔ ɾ əl ᵻ ɐ), and the
templates give statements, questions, exclamations, lists and subordinate clauses so that commas,
question and exclamation intonation all occur. No digits: numbers are spelled out, so the text the
frontend reads is exactly the text espeak-ng spoke.
"""

from __future__ import annotations

import random

NAMES = ("Anna Benjamin Charlotte Daniel Eleanor George Hugh Isabel Joseph Judy Kevin Lucy Martha Nigel Oliver "
         "Peter Quentin Rachel Rupert Sophie Thelma Uma Victor Wendy Xavier Yvonne Zoe Geoffrey Irene Oscar "
         "Theodore Agatha Lloyd Gwen Roy Joyce Ursula Vaughan Heather Marjorie").split()
ADJECTIVES = ("ancient beautiful beige bitter blue bright brittle calm cheerful chilly clumsy cozy crooked curious "
              "damp dusty eager elegant enormous fragile frozen gentle gloomy golden gorgeous greasy hollow huge "
              "humble icy joyful lazy little loyal lucky massive mellow misty modern muddy narrow noisy odd "
              "orange pale peculiar pleasant polished poor precious proud pure purple quiet rough royal rusty "
              "shiny silky smooth sour sturdy sure thirsty thoughtful tired tiny usual vague velvet vivid "
              "weary wooden yellow young zealous").split()
NOUNS = ("anchor apple badge basket beach bottle boy bridge button cabbage castle cello chair cheese choir "
         "client coin cottage cushion diamond doorway dragon engine feather fire flower garage garden giant "
         "guitar hammer harbour helmet hour jacket jewel journey kettle kitten ladder lantern lemon lion "
         "mirror mitten mountain museum needle oyster palace parrot pillow pocket puzzle rhythm saucer "
         "scarf shovel soldier spoon stove sugar teacher thermometer thread tiger toy treasure trumpet "
         "umbrella valley vision voice wagon whistle window wizard yacht zebra engineer pioneer beard reindeer").split()
PLURALS = ("apples boxes bridges buttons candles cherries chairs coins daisies feathers fishes flowers glasses "
           "horses jewels kittens leaves matches oysters pencils puzzles roses saucers stories thoughts "
           "toys whales wishes").split()
VERBS_PAST = ("admired borrowed bought breathed buried carried caught chased cleaned described discovered "
              "dropped enjoyed fetched fixed found grabbed hid hugged inspected juggled kicked measured "
              "mended noticed opened packed painted pushed pulled repaired rescued searched shook sold "
              "squeezed stole threw touched treasured visited wanted washed weighed wrapped")
VERBS_PAST = tuple(VERBS_PAST.split())
VERBS_BASE = ("admire borrow buy carry catch clean describe discover enjoy fetch find fix hide hug inspect "
              "measure mend notice open pack paint push repair rescue search sell squeeze throw touch visit "
              "wash weigh wrap").split()
PLACES = ("near the harbour", "beside the misty loch", "under the bridge", "in the garage", "at the museum",
          "behind the cottage", "on the beach", "inside the palace", "across the valley", "by the fire",
          "in the garden", "at the top of the mountain", "in the choir loft", "outside the theatre",
          "on the television", "in the northern forest", "at the airport", "during the journey",
          "through the window", "in the noisy square", "beneath the ancient oak", "on the pure white snow",
          "near the old pier")
TIMES = ("yesterday", "this morning", "last Thursday", "on Sunday evening", "at midnight", "every autumn",
         "in the early hours", "after the storm", "before breakfast", "later that year", "at half past two",
         "once upon a time", "in the nineteen thirties", "during the winter", "every other week")
ADVERBS = ("quickly slowly carefully happily quietly eagerly anxiously gracefully suddenly usually joyfully "
           "thoroughly awkwardly boldly").split()
NUMBERS = (*"two three four five six seven eight nine ten eleven twelve thirteen twenty forty".split(),
           "a hundred", "a thousand")  # phrases: split into words, "a" and "thousand" were numbers of their own
EXCLAMATIONS = ("Oh no", "Goodness", "Hooray", "Well, well", "Look out", "Oh dear", "Wow", "Hey", "Yes, indeed")
ABSTRACT = ("measure", "decision", "treasure", "leisure", "television", "pleasure", "vision", "version",
            "collision", "occasion", "choice", "noise", "enjoyment", "tour", "cure", "fire", "science", "idea",
            "theory", "zero", "hero", "era", "rhythm", "thought", "wealth", "truth", "youth", "breath")

TEMPLATES = (
    "{Name} {vpast} the {adj} {noun} {place}.",
    "{Name} {vpast} {a} {adj} {noun} {time}.",
    "Did {name} really {vbase} the {adj} {noun} {place}?",
    "Why did {name} {vbase} the {noun} so {adv}?",
    "{excl}, the {noun} is {adj}!",
    "{excl}! {Name} {vpast} my {adj} {noun}!",
    "When the {noun} was {adj}, {name} {vpast} {a} {noun2}.",
    "{Time}, {name} and {name2} {vpast} {num} {plural} {place}.",
    "{Name} said that the {noun} was {adj}, but the {noun2} was {adj2}.",
    "The {adj} {noun} {vpast} {a} {adj2} {noun2}; nobody noticed.",
    "Is the {noun} {adj} or {adj2}?",
    "{Name} {adv} {vpast} {num} {plural}, {a} {noun} and {a2} {noun2}.",
    "Although it was {adj}, {name} {vpast} the {noun} {time}.",
    "Please {vbase} the {adj} {noun} before {name} arrives.",
    "It was a matter of {abstract}, {name} thought {adv}.",
    "How many {plural} did {name} {vbase} {place}?",
    "{Name}'s {noun} looked {adj} and {adj2} {time}.",
    "The {abstract} of the {noun} surprised {name} {place}.",
    "{Time}, the {noun} and the {noun2} were both {adj}.",
    "{Name} {vpast} it.",
    "Where is the {adj} {noun}?",
    "{Name} wanted {a} {adj} {noun}, not {a2} {adj2} {noun2}!",
)


def _article(word: str) -> str:
    """By the sound the word starts with: "an hour", "a unicorn"."""
    vowel = word[0] in "aeiou" and not word.startswith(("usu", "uni", "use"))
    return "an" if vowel or word.startswith(("hour", "honest", "honour", "heir")) else "a"


def _fill(template: str, rng: random.Random) -> str:
    name, name2 = rng.sample(NAMES, 2)
    noun, noun2 = rng.sample(NOUNS, 2)
    adj, adj2 = rng.sample(ADJECTIVES, 2)
    time = rng.choice(TIMES)
    values = {
        "name": name, "Name": name, "name2": name2, "noun": noun, "noun2": noun2, "adj": adj, "adj2": adj2,
        "vpast": rng.choice(VERBS_PAST), "vbase": rng.choice(VERBS_BASE), "place": rng.choice(PLACES),
        "time": time, "Time": time[0].upper() + time[1:], "adv": rng.choice(ADVERBS), "num": rng.choice(NUMBERS),
        "plural": rng.choice(PLURALS), "excl": rng.choice(EXCLAMATIONS), "abstract": rng.choice(ABSTRACT),
    }
    # the article agrees with the word that follows it in the template
    after_a = template.split("{a}", 1)[1].split("}", 1)[0].lstrip(" {") if "{a}" in template else "adj"
    after_a2 = template.split("{a2}", 1)[1].split("}", 1)[0].lstrip(" {") if "{a2}" in template else "adj2"
    values["a"] = _article(values.get(after_a, adj))
    values["a2"] = _article(values.get(after_a2, adj2))
    sentence = template.format(**values)
    return sentence[0].upper() + sentence[1:]


def generate_sentences(num_sentences: int, seed: int = 0) -> list[str]:
    """``num_sentences`` distinct sentences; the same (num, seed) always gives the same list, and a
    larger ``num_sentences`` extends the list of a smaller one (same prefix)."""
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < num_sentences:
        attempts += 1
        if attempts > 50 * num_sentences + 1000:
            raise ValueError(f"could not generate {num_sentences} distinct sentences (got {len(out)})")
        sentence = _fill(TEMPLATES[rng.randrange(len(TEMPLATES))], rng)
        if sentence not in seen:
            seen.add(sentence)
            out.append(sentence)
    return out
