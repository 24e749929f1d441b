"""The assistant's offline commands (not on the request path):

- ``python3 -m functions.assistant.cli eval``   accuracy on the evaluation set (top-1, top-3,
  intent, per intent, tuning and holdout parts, conversations) and the misses;
- ``python3 -m functions.assistant.cli vocab``  rebuild ``data/compounds.txt``: the compound words
  underthesea's word segmenter finds in the catalogue and the lexicon (its model ships inside the
  package; nothing is downloaded), folded. underthesea is needed only here.
"""

from __future__ import annotations

import sys

from lscloud.listing import fold


def catalogue() -> list[dict]:
    from functions.procedures.function import catalogue as procedures_catalogue

    return procedures_catalogue.build()["procedures"]


def vocab() -> int:
    from underthesea import word_tokenize

    from .function import retrieval, text

    texts = []
    for p in catalogue():
        texts += [p["name"], p["field_name"]] + [d["name"] for d in p["documents"]] + list(p["results"])
    lex = retrieval.lexicon()
    texts += list(lex["phrases"]) + [v for v in lex["phrases"].values()]
    texts += [n for names in lex["aliases"].values() for n in names]
    words = set()
    for t in texts:
        for w in word_tokenize(t):
            f = fold(w)
            if 1 < len(f.split()) <= text.MAX_COMPOUND:
                words.add(f)
    path = text.DATA / "compounds.txt"
    path.write_text("# Compound words found by underthesea.word_tokenize in the catalogue and lexicon, folded.\n"
                    "# Rebuilt by `python3 -m functions.assistant.cli vocab`.\n" + "\n".join(sorted(words)) + "\n",
                    encoding="utf-8")
    print(f"{len(words)} compounds -> {path}")
    return 0


def evaluate(show_misses: bool = True) -> int:
    from .function import evaluation
    from .function.retrieval import Index

    results = evaluation.run(Index(catalogue()))
    print(evaluation.report(results))
    if show_misses:
        for part, score in results.items():
            for miss in score.misses:
                print(f"  miss [{part}] {miss}")
    return 0


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "eval"
    sys.exit({"vocab": vocab, "eval": evaluate}.get(command, lambda: print(__doc__) or 2)())
