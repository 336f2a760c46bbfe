"""FER+ crowd votes as soft training targets for FER2013.

FER+ (`fer2013new.csv`) re-labelled every FER2013 image with ten crowd votes. Its rows follow
FER2013's row order, so within each Usage split the n-th FER+ row is the n-th FER2013 image.
The votes for FER2013's seven classes become a probability distribution per image; training
mixes it with the FER2013 label (`ferplus_weight` of the target), which keeps FER2013's classes
while teaching which expressions people actually confuse.
"""
import csv
from pathlib import Path

import numpy as np

from common.errors import FacemoodError
from train.data import FER2013_LABELS, FER2013_USAGE, SPLITS

# FER+ column name of each FER2013 class; contempt, unknown and NF (not a face) have no FER2013 class.
FERPLUS_COLUMNS = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
                   "sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
OTHER_COLUMNS = ["contempt", "unknown", "NF"]
# An image whose raters mostly chose contempt, "unknown" or "not a face" says little about the seven
# classes: its few votes among them, scaled to a whole distribution, would be a confident target
# (8 votes contempt and 1 neutral made a 100 % neutral one). As FER+'s own majority rule drops
# such images, only the FER2013 label counts for them.
MIN_SHARE_OF_VOTES = 0.5
MIN_AGREEMENT = 0.4
# Data rows (0 = the first after the header) whose votes rate another image: FER+ gave them a file
# name also given to a later row, whose image overwrote theirs (rows 6968 and 34334). Their votes are
# left out, so that only the FER2013 label counts for them.
VOTES_FOR_ANOTHER_IMAGE = {5274, 33200}


def read_vote_distributions(path):
    """{split: (n, 7) float32} FER+ vote shares in FER2013's class order, per FER2013 split.

    Rows whose seven classes hold less than MIN_SHARE_OF_VOTES of all their votes (contempt,
    unknown and NF counted where the file has them; a row of only 'not a face' votes among them),
    and the rows of VOTES_FOR_ANOTHER_IMAGE, get NaN rows: for them only the FER2013 label counts.
    """
    path = Path(path)
    if not path.is_file():
        raise FacemoodError(f"{path}: FER+ votes file does not exist")
    rows = {s: [] for s in SPLITS}
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # as train/data.py reads the CSV
            reader = csv.DictReader(f)
            missing = [c for c in ["Usage", *FERPLUS_COLUMNS.values()] if c not in (reader.fieldnames or [])]
            if missing:
                raise FacemoodError(f"{path}: not a FER+ votes file (fer2013new.csv): no column {missing[0]!r}")
            others = [c for c in OTHER_COLUMNS if c in reader.fieldnames]
            for line_no, row in enumerate(reader, start=2):
                usage = row["Usage"]
                if usage not in FER2013_USAGE:
                    raise FacemoodError(f"{path}:{line_no}: Usage {usage!r} is not one of {', '.join(FER2013_USAGE)}")
                try:
                    votes = [float(row[FERPLUS_COLUMNS[label]]) for label in FER2013_LABELS]
                    other = sum(float(row[c]) for c in others)
                except (TypeError, ValueError):
                    raise FacemoodError(f"{path}:{line_no}: votes must be numbers") from None
                mostly_other = other > 0 and sum(votes) < MIN_SHARE_OF_VOTES * (sum(votes) + other)
                left_out = line_no - 2 in VOTES_FOR_ANOTHER_IMAGE or mostly_other
                rows[FER2013_USAGE[usage]].append([0.0] * len(votes) if left_out else votes)
    except (OSError, UnicodeDecodeError) as e:
        raise FacemoodError(f"{path}: cannot read FER+ votes ({e})") from None
    shares = {}
    for split, votes in rows.items():
        votes = np.asarray(votes, np.float32).reshape(-1, len(FER2013_LABELS))
        totals = votes.sum(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares[split] = np.where(totals > 0, votes / totals, np.nan).astype(np.float32)
    return shares


def soft_targets(dataset, path, weight):
    """{split: (n, 7) float32} training targets: `weight` FER+ vote shares + the rest the FER2013 label.

    The FER+ file must describe the same images: as many rows per split as the data set has.
    """
    if not 0 <= weight <= 1:
        raise FacemoodError(f"--ferplus-weight must be between 0 and 1, not {weight}")
    if dataset.kind != "fer2013-csv" or dataset.labels != FER2013_LABELS:
        raise FacemoodError("--ferplus needs FER2013's CSV as --data (FER+ votes are tied to its rows)")
    shares = read_vote_distributions(path)
    targets, agree, voted = {}, 0, 0
    for split in SPLITS:
        labels = dataset.split(split).labels
        if len(shares[split]) != len(labels):
            raise FacemoodError(f"{path}: {len(shares[split])} {split} rows, but the data has {len(labels)}: "
                                f"not the FER+ votes of this FER2013 file")
        valid = ~np.isnan(shares[split][:, 0])
        agree += int((np.argmax(shares[split][valid], axis=1) == labels[valid]).sum())
        voted += int(valid.sum())
        one_hot = np.eye(len(FER2013_LABELS), dtype=np.float32)[labels]
        votes = np.where(np.isnan(shares[split]), one_hot, shares[split])
        targets[split] = (1 - weight) * one_hot + weight * votes
    # Aligned rows agree on about 63 %; shuffled ones on about 18 %.
    if voted and agree / voted < MIN_AGREEMENT:
        raise FacemoodError(f"{path}: FER+'s most-voted class matches the FER2013 label on only "
                            f"{agree / voted:.0%} of images: its rows do not line up with this FER2013 file")
    return targets
