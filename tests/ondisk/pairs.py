"""A tiny ``eng-fra.txt`` in the real Tatoeba format: ``English<TAB>French[<TAB>attribution]``.

Real sentence pairs, written by hand in the style of the file (short imperatives and everyday
sentences, several French translations of one English sentence, French spacing before ``!``/``?``,
curly apostrophes). Some lines carry manythings.org's third CC-BY attribution column, as ``fra.txt``
does; one pair is longer than the default ``max_len`` and one line is blank, as loaders meet them.
"""

from __future__ import annotations

from pathlib import Path

ATTRIBUTION = "CC-BY 2.0 (France) Attribution: tatoeba.org"

PAIRS = [
    ("Go.", "Va !"),
    ("Run!", "Cours !"),
    ("Run!", "Courez !"),
    ("Wow!", "Ça alors !"),
    ("Fire!", "Au feu !"),
    ("Help!", "À l'aide !"),
    ("Jump.", "Saute."),
    ("Stop!", "Arrête-toi !"),
    ("Wait!", "Attends !"),
    ("Wait!", "Attendez !"),
    ("Hello!", "Bonjour !"),
    ("I see.", "Je comprends."),
    ("I try.", "J'essaye."),
    ("I won!", "J'ai gagné !"),
    ("Come in.", "Entrez !"),
    ("Get out!", "Sortez !"),
    ("Go away!", "Va-t'en !"),
    ("Goodbye!", "Au revoir !"),
    ("Hurry up.", "Dépêche-toi !"),
    ("I'm OK.", "Je vais bien."),
    ("I'm cold.", "J'ai froid."),
    ("I'm hungry.", "J'ai faim."),
    ("I'm tired.", "Je suis fatigué."),
    ("I'm tired.", "Je suis fatiguée."),
    ("I am sick.", "Je suis malade."),
    ("I am happy.", "Je suis heureux."),
    ("I am at home.", "Je suis à la maison."),
    ("He is tall.", "Il est grand."),
    ("He is busy.", "Il est occupé."),
    ("He is my brother.", "C'est mon frère."),
    ("She is happy.", "Elle est heureuse."),
    ("She is my sister.", "C'est ma sœur."),
    ("We are friends.", "Nous sommes amis."),
    ("We are late.", "Nous sommes en retard."),
    ("They are students.", "Ils sont étudiants."),
    ("You are right.", "Tu as raison."),
    ("You are right.", "Vous avez raison."),
    ("I like cats.", "J'aime les chats."),
    ("I like music.", "J'aime la musique."),
    ("I love you.", "Je t’aime."),
    ("Who are you?", "Qui êtes-vous ?"),
    ("Where is the station?", "Où est la gare ?"),
    ("What time is it?", "Quelle heure est-il ?"),
    ("It is raining.", "Il pleut."),
    ("The cat is black.", "Le chat est noir."),
    ("The dog is sleeping.", "Le chien dort."),
    ("I need help.", "J'ai besoin d'aide."),
    ("I want to go home.", "Je veux rentrer à la maison."),
    ("Tom is my friend.", "Tom est mon ami."),
    ("This book is mine.", "Ce livre est à moi."),
    ("I don't know.", "Je ne sais pas."),
    ("I have two brothers.", "J'ai deux frères."),
    ("Thank you very much.", "Merci beaucoup."),
    ("See you tomorrow.", "À demain."),
    ("I will call you later.", "Je t'appellerai plus tard."),
    ("If you want to learn a language well, you have to speak it every single day.",
     "Si tu veux bien apprendre une langue, il faut la parler tous les jours sans exception."),
]
WITH_ATTRIBUTION = {0, 1, 2, 13, 20, 40}  # lines that carry the third column


def write(root: Path) -> None:
    """``<root>/eng-fra.txt``, UTF-8, one pair per line."""
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (en, fr) in enumerate(PAIRS):
        cols = [en, fr] + ([f"{ATTRIBUTION} #{1000 + i} (CM) & #{2000 + i} (sacredceltic)"]
                           if i in WITH_ATTRIBUTION else [])
        lines.append("\t".join(cols))
        if i == 30:
            lines.append("")
    (root / "eng-fra.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


WRITERS = {"tab_pairs": write}
