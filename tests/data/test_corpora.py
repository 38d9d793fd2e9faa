"""Corpus readers (`msmae.data.corpora`) on fixtures built in each publisher's layout, and `msmae prepare`.

Reader tests create the source videos as empty files: readers only check that a source exists (decoding is the
extraction's job). The end-to-end `prepare` tests run MediaPipe on the real sample video (and on PNG frames cut from
it) and are marked slow.
"""

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from msmae.data.corpora import CorpusError, read_corpus
from msmae.data.corpora.csl_daily import load_plain_pickle
from msmae.data.corpora.slovo import publisher_classes

from conftest import SHARED_DATA

SAMPLE_VIDEO = SHARED_DATA / "pose-format-samples" / "test_video.mp4"


def touch(path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write(path, text) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def by_id(index):
    return {clip.clip_id: clip for clip in index.clips()}


# ---- WLASL ----------------------------------------------------------------------------------------------------------

def _instance(video_id, split, signer, url="https://aslbricks.org/x.mp4", start=1, end=-1):
    return {"bbox": [0, 0, 10, 10], "fps": 25, "frame_end": end, "frame_start": start, "instance_id": 0,
            "signer_id": signer, "source": "aslbricks", "split": split, "url": url, "variation_id": 0,
            "video_id": video_id}


def wlasl_root(tmp_path):
    """WLASL_v0.3.json with 300 glosses (instances on a few), preprocess.py's videos/ and the raw downloads."""
    glosses = [{"gloss": f"gloss{i:03d}", "instances": []} for i in range(300)]
    glosses[0]["gloss"], glosses[1]["gloss"], glosses[150]["gloss"] = "book", "drink", "late"
    glosses[0]["instances"] = [_instance("69241", "train", 118), _instance("07069", "val", 7),
                               _instance("07070", "test", 9)]  # 07070 is a dead link: no file
    youtube = "https://www.youtube.com/watch?v=0UsjUE-TXns"
    glosses[1]["instances"] = [_instance("70244", "train", 3, url=youtube, start=11, end=60),
                               _instance("70245", "test", 3, url=youtube, start=101, end=-1),
                               _instance("65540", "train", 5, url="https://signingsavvy.com/y.mp4")]
    glosses[150]["instances"] = [_instance("32319", "train", 2)]
    root = tmp_path / "start_kit"
    write(root / "WLASL_v0.3.json", json.dumps(glosses))
    for video_id in ("69241", "07069", "32319"):
        touch(root / "videos" / f"{video_id}.mp4")
    touch(root / "raw_videos_mp4" / "0UsjUE-TXns.mp4")  # not cut yet by preprocess.py
    touch(root / "raw_videos_mp4" / "65540.mp4")
    return root


def test_wlasl_json_subsets_order_ranges_and_missing(tmp_path):
    root = wlasl_root(tmp_path)
    index = read_corpus("wlasl", root, subset=100)
    assert index.label_names[:2] == ["book", "drink"] and len(index.label_names) == 100
    assert list(index.splits) == ["train", "validation", "test"]
    clips = by_id(index)
    assert "32319" not in clips  # gloss 150 is outside WLASL100
    assert index.missing == [str(root / "videos" / "07070.mp4")]
    assert clips["69241"].path == str(root / "videos" / "69241.mp4") and clips["69241"].start is None
    assert clips["69241"].columns == {"label": "book", "signer": "118", "video_id": "69241", "split": "train"}
    assert clips["07069"].columns["split"] == "validation"
    # frame_start is 1-based, frame_end inclusive, at the instance's 25 fps; -1 means to the end.
    assert clips["70244"].path == str(root / "raw_videos_mp4" / "0UsjUE-TXns.mp4")
    assert (clips["70244"].start, clips["70244"].end) == (10 / 25, 60 / 25)
    assert (clips["70245"].start, clips["70245"].end) == (100 / 25, None)
    assert clips["65540"].start is None and clips["65540"].end is None  # non-YouTube raw videos are used whole
    assert [c.clip_id for c in index.splits["test"]] == ["70245"]

    full = read_corpus("wlasl", root, subset=300)
    assert len(full.label_names) == 300 and full.label_names[150] == "late"
    assert by_id(full)["32319"].columns["label"] == "late"
    with pytest.raises(CorpusError, match="fewer than WLASL1000"):
        read_corpus("wlasl", root, subset=1000)
    with pytest.raises(CorpusError, match="subset must be one of"):
        read_corpus("wlasl", root, subset=50)


def test_wlasl_cut_video_wins_over_raw_and_bad_split_names_the_instance(tmp_path):
    root = wlasl_root(tmp_path)
    touch(root / "videos" / "70244.mp4")
    clip = by_id(read_corpus("wlasl", root, subset=100))["70244"]
    assert clip.path == str(root / "videos" / "70244.mp4") and clip.start is None
    glosses = json.loads((root / "WLASL_v0.3.json").read_text())
    glosses[1]["instances"][1]["frame_start"] = 0  # frames are 1-based: 0 would start before the video
    write(root / "WLASL_v0.3.json", json.dumps(glosses))
    with pytest.raises(CorpusError, match=r"video '70245'.*empty or negative"):
        read_corpus("wlasl", root, subset=100)
    glosses[1]["instances"][1]["frame_start"] = 101
    glosses[1]["instances"][0]["split"] = "training"
    write(root / "WLASL_v0.3.json", json.dumps(glosses))
    with pytest.raises(CorpusError, match=r"gloss 1 \('drink'\), video '70244'.*unknown split 'training'"):
        read_corpus("wlasl", root, subset=100)


def test_wlasl_start_kit_nslt_form(tmp_path):
    root = tmp_path / "preprocess"
    names = ["book", "drink", "computer"] + [f"gloss{i}" for i in range(3, 2000)]
    write(root / "wlasl_class_list.txt", "".join(f"{i}\t{name}\n" for i, name in enumerate(names)))
    write(root / "nslt_100.json", json.dumps({
        "05237": {"subset": "train", "action": [2, 1, 55]},
        "69422": {"subset": "val", "action": [0, 1, 51]},
        "70244": {"subset": "train", "action": [1, 1146, 1241]},
        "10898": {"subset": "test", "action": [99, 1, 39]},
    }))
    for video_id in ("05237", "69422", "70244"):
        touch(root / "videos" / f"{video_id}.mp4")
    index = read_corpus("wlasl", root, subset=100)
    assert index.label_names == names[:100]
    clips = by_id(index)
    assert clips["05237"].columns == {"label": "computer", "video_id": "05237", "split": "train"}
    assert clips["69422"].columns["split"] == "validation"
    assert clips["70244"].start is None  # videos/ holds clips already cut by preprocess.py
    assert index.missing == [str(root / "videos" / "10898.mp4")]
    assert index.splits["test"] == []
    write(root / "nslt_100.json", json.dumps({"05237": {"subset": "train", "action": [150, 1, 55]}}))
    with pytest.raises(CorpusError, match="class 150 is outside WLASL100"):
        read_corpus("wlasl", root, subset=100)


def test_wlasl_without_annotations_says_where_to_get_them(tmp_path):
    with pytest.raises(CorpusError, match="github.com/dxli94/WLASL"):
        read_corpus("wlasl", tmp_path)


# ---- ASL Citizen ----------------------------------------------------------------------------------------------------

ASL_CITIZEN_HEADER = "Participant ID,Video file,Gloss,ASL-LEX Code\n"


def asl_citizen_root(tmp_path):
    base = tmp_path / "ASL_Citizen"
    write(base / "splits" / "train.csv", ASL_CITIZEN_HEADER +
          "P1,0001-SEE.mp4,SEE,C_01_001\nP1,0002-APPLE.mp4,APPLE ,C_02_002\nP2,0003-SEE.mp4,SEE,C_01_001\n")
    write(base / "splits" / "val.csv", ASL_CITIZEN_HEADER)  # a split with no rows
    write(base / "splits" / "test.csv", ASL_CITIZEN_HEADER +
          'P9,0004-APPLE.mp4,APPLE,C_02_002\nP9,"0005-THANK, YOU.mp4",THANKYOU,C_03_003\n')
    for name in ("0001-SEE.mp4", "0002-APPLE.mp4", "0003-SEE.mp4", "0005-THANK, YOU.mp4"):
        touch(base / "videos" / name)
    return tmp_path


def test_asl_citizen_splits_signers_order_and_missing(tmp_path):
    root = asl_citizen_root(tmp_path)
    index = read_corpus("asl_citizen", root)
    assert index.label_names == ["SEE", "APPLE", "THANKYOU"]  # first appearance in train, stripped; then test
    assert [len(index.splits[s]) for s in ("train", "validation", "test")] == [3, 0, 1]
    clip = by_id(index)["0002-APPLE"]
    assert clip.columns == {"label": "APPLE", "signer": "P1", "asl_lex_code": "C_02_002", "split": "train"}
    assert clip.path == str(root / "ASL_Citizen" / "videos" / "0002-APPLE.mp4")
    assert index.missing == [str(root / "ASL_Citizen" / "videos" / "0004-APPLE.mp4")]
    write(root / "ASL_Citizen" / "splits" / "test.csv", ASL_CITIZEN_HEADER + "P9,0004-APPLE.mp4\n")
    with pytest.raises(CorpusError, match=r"test.csv, line 2: 2 fields where the header has 4"):
        read_corpus("asl_citizen", root)
    write(root / "ASL_Citizen" / "splits" / "test.csv", "Participant,File,Sign\n")
    with pytest.raises(CorpusError, match=r"columns \['Participant ID', 'Video file', 'Gloss'\] not in the header"):
        read_corpus("asl_citizen", root)


# ---- Slovo ----------------------------------------------------------------------------------------------------------

SLOVO_HEADER = "attachment_id\tuser_id\twidth\theight\tlength\ttext\ttrain\tbegin\tend\n"


def slovo_root(tmp_path):
    root = tmp_path / "slovo"
    write(root / "annotations.csv", SLOVO_HEADER +
          "de81cc1c-aaaa\tu1\t1440\t1920\t14\tпривет\tTrue\t30\t45\n"
          "3c0cec5a-bbbb\tu2\t1440\t1920\t32\tутро\tFalse\t43\t66\n"
          "d17ca986-cccc\tu2\t1920\t1080\t44\tпривет\tFalse\t12\t31\n"
          "f17a6060-dddd\tu3\t1920\t1080\t20\tno_event\tTrue\t0\t20\n")
    touch(root / "train" / "de81cc1c-aaaa.mp4")
    touch(root / "test" / "3c0cec5a-bbbb.mp4")
    touch(root / "train" / "f17a6060-dddd.mp4")
    return root


def test_slovo_tab_separated_flags_trimming_and_class_order(tmp_path):
    root = slovo_root(tmp_path)
    index = read_corpus("slovo", tmp_path)  # finds slovo/annotations.csv
    assert list(index.splits) == ["train", "test"]
    assert index.label_names == ["привет", "утро", "no_event"]
    clip = by_id(index)["3c0cec5a-bbbb"]
    assert clip.columns == {"label": "утро", "signer": "u2", "split": "test"}
    assert clip.start_frame is None and clip.end_frame is None  # slovo.zip's videos are already trimmed
    assert index.missing == [str(root / "test" / "d17ca986-cccc.mp4")]
    original = by_id(read_corpus("slovo", root, trimmed=False))["3c0cec5a-bbbb"]
    assert (original.start_frame, original.end_frame) == (43, 66)

    constants = write(tmp_path / "constants.py",
                      'classes = {\n    0: "утро",\n    1: "привет",\n    2: "no_event",\n}\n')
    assert publisher_classes(constants) == ["утро", "привет", "no_event"]
    assert read_corpus("slovo", root, class_list=constants).label_names == ["утро", "привет", "no_event"]
    write(constants, 'import os\nclasses = {0: os.getcwd()}\n')
    with pytest.raises(CorpusError, match="not a literal"):
        publisher_classes(constants)

    text = (root / "annotations.csv").read_text().replace("\tFalse\t43", "\tmaybe\t43")
    write(root / "annotations.csv", text)
    with pytest.raises(CorpusError, match=r"annotations.csv, line 3: train flag 'maybe'"):
        read_corpus("slovo", root)


# ---- PHOENIX-2014-T -------------------------------------------------------------------------------------------------

PHOENIX_HEADER = "name|video|start|end|speaker|orth|translation\n"


def _frames(folder, count=3, image=None):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (image or Image.new("RGB", (210, 260))).save(folder / f"images{i + 1:04d}.png")


def phoenix_root(tmp_path, image=None, count=3):
    base = tmp_path / "PHOENIX-2014-T-release-v3" / "PHOENIX-2014-T"
    manual = base / "annotations" / "manual"
    write(manual / "PHOENIX-2014-T.train.corpus.csv", PHOENIX_HEADER +
          "01April_2010_Thursday_heute-6694|01April_2010_Thursday_heute-6694/1/*.png|-1|-1|Signer04|"
          "REGEN SCHNEE|und nun die wettervorhersage\n")
    write(manual / "PHOENIX-2014-T.dev.corpus.csv", PHOENIX_HEADER +
          "11August_2010_Wednesday_tagesschau-2|11August_2010_Wednesday_tagesschau-2/1/*.png|-1|-1|Signer08|"
          "DRUCK TIEF KOMMEN|tiefer luftdruck bestimmt in den nächsten tagen unser wetter\n"
          "11August_2010_Wednesday_tagesschau-3|11August_2010_Wednesday_tagesschau-3/1/*.png|-1|-1|Signer08|"
          "ES-BEDEUTET VIEL WOLKE|das bedeutet viele wolken\n")
    write(manual / "PHOENIX-2014-T.test.corpus.csv", PHOENIX_HEADER)  # a split with no rows
    frames = base / "features" / "fullFrame-210x260px"
    _frames(frames / "train" / "01April_2010_Thursday_heute-6694", count, image)
    _frames(frames / "dev" / "11August_2010_Wednesday_tagesschau-2" / "1", count, image)  # the pattern's 1/ level
    return tmp_path, frames


def test_phoenix14t_pipe_csv_frame_folders_and_missing(tmp_path):
    root, frames = phoenix_root(tmp_path)
    index = read_corpus("phoenix14t", root)
    assert index.label_names is None and list(index.splits) == ["train", "validation", "test"]
    clip = index.splits["train"][0]
    assert clip.path == str(frames / "train" / "01April_2010_Thursday_heute-6694") and clip.fps == 25.0
    assert clip.columns == {"text": "und nun die wettervorhersage", "gloss": "REGEN SCHNEE", "signer": "Signer04",
                            "name": "01April_2010_Thursday_heute-6694", "split": "train"}
    assert index.splits["validation"][0].path == str(frames / "dev" / "11August_2010_Wednesday_tagesschau-2" / "1")
    assert index.missing == [str(frames / "dev" / "11August_2010_Wednesday_tagesschau-3")]
    assert index.splits["test"] == []
    manual = frames.parents[1] / "annotations" / "manual"
    write(manual / "PHOENIX-2014-T.test.corpus.csv", PHOENIX_HEADER + "x|x/1/*.png|-1|-1|Signer01|A\n")
    with pytest.raises(CorpusError, match=r"test.corpus.csv, line 2: 6 fields where the header has 7"):
        read_corpus("phoenix14t", root)


# ---- CSL-Daily ------------------------------------------------------------------------------------------------------

def csl_daily_root(tmp_path, video_map=True):
    base = tmp_path / "CSL-Daily"
    write(base / "sentence_label" / "split_1.txt",
          "name|split\nS000007_P0003_T00|train\nS000008_P0010_T01|dev\nS000009_P0001_T00|test\n")
    if video_map:
        write(base / "sentence_label" / "video_map.txt",
              "index|name|length|gloss|char|word|postag\n"
              "0|S000007_P0003_T00|55|他 谁|他 是 谁 ？|他 是 谁 ？|r v r w\n"
              "1|S000008_P0010_T01|60|你 好|你 好 。|你好 。|r a w\n"
              "2|S000009_P0001_T00|40|谢谢|谢 谢|谢谢|v\n")
    for name in ("S000007_P0003_T00", "S000009_P0001_T00"):
        folder = base / "sentence" / "frames_512x512" / name
        for i in range(2):
            touch(folder / f"{i:06d}.jpg")
    return tmp_path, base


def test_csl_daily_video_map_split_and_signers(tmp_path):
    root, base = csl_daily_root(tmp_path)
    index = read_corpus("csl_daily", root)
    clip = index.splits["train"][0]
    assert clip.columns == {"text": "他是谁？", "gloss": "他 谁", "signer": "3", "name": "S000007_P0003_T00",
                            "split": "train"}
    assert clip.path == str(base / "sentence" / "frames_512x512" / "S000007_P0003_T00") and clip.fps == 30.0
    assert index.missing == [str(base / "sentence" / "frames_512x512" / "S000008_P0010_T01")]
    assert index.splits["validation"] == [] and len(index.splits["test"]) == 1
    assert read_corpus("csl_daily", root, fps=25).splits["test"][0].fps == 25.0


def test_csl_daily_pickle_is_read_without_running_code(tmp_path):
    root, base = csl_daily_root(tmp_path, video_map=False)
    info = [{"name": "S000007_P0003_T00", "length": 55, "label_gloss": ["他", "谁"],
             "label_char": ["他", "是", "谁", "？"],
             "label_word": ["他", "是", "谁", "？"], "label_postag": ["r", "v", "r", "w"], "signer": 3, "time": 0},
            {"name": "S000008_P0010_T01", "length": 60, "label_gloss": ["你", "好"], "label_char": ["你", "好"],
             "label_word": ["你好"], "label_postag": ["r"], "signer": 10, "time": 1},
            {"name": "S000009_P0001_T00", "length": 40, "label_gloss": ["谢谢"], "label_char": ["谢", "谢"],
             "label_word": ["谢谢"], "label_postag": ["v"], "signer": 1, "time": 0}]
    pickled = base / "sentence_label" / "csl2020ct_v2.pkl"
    pickled.write_bytes(pickle.dumps({"info": info, "gloss_map": ["他", "谁"]}))
    index = read_corpus("csl_daily", root)
    assert index.splits["train"][0].columns == {"text": "他是谁？", "gloss": "他 谁", "signer": "3",
                                                "name": "S000007_P0003_T00", "split": "train"}

    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    pickled.write_bytes(pickle.dumps({"info": [Exploit()]}))
    with pytest.raises(CorpusError, match="pathlib.*never loads objects.*video_map.txt"):
        read_corpus("csl_daily", root)
    assert not marker.exists()
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": [1, 2.5, "x"], "b": (None, True)}))
    assert load_plain_pickle(plain) == {"a": [1, 2.5, "x"], "b": (None, True)}


# ---- How2Sign -------------------------------------------------------------------------------------------------------

H2S_HEADER = "VIDEO_ID\tVIDEO_NAME\tSENTENCE_ID\tSENTENCE_NAME\tSTART_REALIGNED\tEND_REALIGNED\tSENTENCE\n"


def how2sign_root(tmp_path):
    base = tmp_path / "How2Sign"
    text = base / "sentence_level" / "{}" / "text" / "en" / "raw_text" / "re_aligned"
    write(Path(str(text).format("train")) / "how2sign_realigned_train.csv", H2S_HEADER +
          "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t10\t--7E2sU6zP4_10-5-rgb_front\t129.06\t142.48\tAnd I call them decorative elements.\n"
          "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t11\t--7E2sU6zP4_11-5-rgb_front\t142.5\t150.1\tSo they're \"flowers\".\n")
    write(Path(str(text).format("val")) / "how2sign_realigned_val.csv", H2S_HEADER +
          "-d5dN54tH2E\t-d5dN54tH2E-1-rgb_front\t0\t-d5dN54tH2E_0-1-rgb_front\t2.0\t5.5\tHi.\n")
    write(Path(str(text).format("test")) / "how2sign_realigned_test.csv", H2S_HEADER)
    touch(base / "sentence_level" / "train" / "rgb_front" / "raw_videos" / "--7E2sU6zP4_10-5-rgb_front.mp4")
    touch(base / "video_level" / "train" / "rgb_front" / "raw_videos" / "--7E2sU6zP4-5-rgb_front.mp4")
    return tmp_path, base


def test_how2sign_clips_then_raw_videos_by_time(tmp_path):
    root, base = how2sign_root(tmp_path)
    index = read_corpus("how2sign", root)
    clips = by_id(index)
    first, second = clips["--7E2sU6zP4_10-5-rgb_front"], clips["--7E2sU6zP4_11-5-rgb_front"]
    assert first.path.endswith("sentence_level/train/rgb_front/raw_videos/--7E2sU6zP4_10-5-rgb_front.mp4")
    assert first.start is None
    assert second.path.endswith("video_level/train/rgb_front/raw_videos/--7E2sU6zP4-5-rgb_front.mp4")
    assert (second.start, second.end) == (142.5, 150.1)
    assert second.columns == {"text": 'So they\'re "flowers".', "video_name": "--7E2sU6zP4-5-rgb_front",
                              "sentence_name": "--7E2sU6zP4_11-5-rgb_front", "split": "train"}
    assert index.missing == [str(base / "sentence_level" / "val" / "rgb_front" / "-d5dN54tH2E_0-1-rgb_front.mp4")]
    assert index.splits["test"] == []
    from_videos = by_id(read_corpus("how2sign", root, source="videos"))
    assert (from_videos["--7E2sU6zP4_10-5-rgb_front"].start, from_videos["--7E2sU6zP4_10-5-rgb_front"].end) == (
        129.06, 142.48)
    assert len(read_corpus("how2sign", root, source="clips").splits["train"]) == 1
    flat = tmp_path / "flat"  # the three CSVs and a folder of clips, as many users keep them
    for official, rows in (("train", "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t10\t--7E2sU6zP4_10-5-rgb_front\t1\t2\tA.\n"),
                           ("val", ""), ("test", "")):
        write(flat / f"how2sign_realigned_{official}.csv", H2S_HEADER + rows)
    touch(flat / "train_rgb_front_clips" / "raw_videos" / "--7E2sU6zP4_10-5-rgb_front.mp4")
    assert [c.clip_id for c in read_corpus("how2sign", flat).splits["train"]] == ["--7E2sU6zP4_10-5-rgb_front"]
    csv = base / "sentence_level" / "val" / "text" / "en" / "raw_text" / "re_aligned" / "how2sign_realigned_val.csv"
    write(csv, H2S_HEADER + "a\tb\t0\tc\t5.0\t2.0\tBackwards.\n")
    with pytest.raises(CorpusError, match=r"realigned_val.csv, line 2: END_REALIGNED 2.0 is not after"):
        read_corpus("how2sign", root)


# ---- YouTube-ASL and the generic manifest ---------------------------------------------------------------------------

def test_youtube_asl_ids_and_downloaded_files(tmp_path):
    write(tmp_path / "youtube_asl_video_ids.txt", "# YouTube-ASL\n0UsjUE-TXns\nAbCdEfGhIjK\n\nzzzzzzzzzzz\n")
    touch(tmp_path / "videos" / "0UsjUE-TXns.mp4")
    touch(tmp_path / "videos" / "How to sign [AbCdEfGhIjK].mkv")  # yt-dlp's default name
    touch(tmp_path / "videos" / "unlisted1234.mp4")
    index = read_corpus("youtube_asl", tmp_path)
    assert [c.clip_id for c in index.splits["train"]] == ["0UsjUE-TXns", "AbCdEfGhIjK"]
    assert index.splits["train"][1].path.endswith("How to sign [AbCdEfGhIjK].mkv")
    assert index.label_names is None and index.missing == [str(tmp_path / "zzzzzzzzzzz.mp4")]
    write(tmp_path / "youtube_asl_video_ids.txt", "https://youtu.be/0UsjUE-TXns\n")
    with pytest.raises(CorpusError, match="line 1: .* is not a YouTube video id"):
        read_corpus("youtube_asl", tmp_path)


def test_manifest_rows_ranges_labels_and_errors(tmp_path):
    touch(tmp_path / "corpus" / "session1.mp4")
    manifest = write(tmp_path / "corpus" / "jsl.csv",
                     "path,start,end,label,signer,split\n"
                     "session1.mp4,1.5,2.25,ARIGATOU,1,train\n"
                     "session1.mp4,3.0,4.0,KONNICHIWA,1,validation\n"
                     "session2.mp4,0.0,1.0,ARIGATOU,2,test\n")
    index = read_corpus("manifest", manifest)
    assert index.label_names == ["ARIGATOU", "KONNICHIWA"]
    first = index.splits["train"][0]
    assert (first.path, first.start, first.end) == (str(tmp_path / "corpus" / "session1.mp4"), 1.5, 2.25)
    assert first.columns == {"label": "ARIGATOU", "signer": "1", "split": "train"}  # signer ids stay text
    assert index.splits["validation"][0].columns["label"] == "KONNICHIWA"
    assert index.missing == [str(tmp_path / "corpus" / "session2.mp4")] and index.splits["test"] == []
    classes = write(tmp_path / "classes.txt", "KONNICHIWA\nARIGATOU\nSAYONARA\n")
    assert read_corpus("manifest", manifest, class_list=classes).label_names == ["KONNICHIWA", "ARIGATOU", "SAYONARA"]
    write(manifest, "path,start,end,label\nsession1.mp4,2.0,1.0,X\n")
    with pytest.raises(CorpusError, match=r"jsl.csv, line 2: end 1.0 is not after start 2.0"):
        read_corpus("manifest", manifest)
    write(manifest, "path,start,end,label\nsession1.mp4,0,1,X\nsession1.mp4,1,2,\n")
    with pytest.raises(CorpusError, match=r"jsl.csv, row 2: no label, while other rows have one"):
        read_corpus("manifest", manifest)
    write(manifest, "path,keypoints\nsession1.mp4,x\n")
    with pytest.raises(CorpusError, match=r"jsl.csv: columns \['keypoints'\] clash"):
        read_corpus("manifest", manifest)
    write(manifest, "path,split\nsession1.mp4,dev\n")
    with pytest.raises(CorpusError, match=r"jsl.csv, row 1: split must be one of"):
        read_corpus("manifest", manifest)
    jsonl = write(tmp_path / "corpus" / "m.jsonl", '{"path": "session1.mp4", "text": "good morning"}\n')
    only = read_corpus("manifest", jsonl)
    assert only.label_names is None and only.splits["train"][0].columns == {"text": "good morning", "split": "train"}


def test_unknown_corpus_lists_the_known_ones(tmp_path):
    with pytest.raises(CorpusError, match="wlasl, asl_citizen, slovo"):
        read_corpus("msasl", tmp_path)


# ---- msmae prepare end to end (MediaPipe on the real sample video) -------------------------------------------------

@pytest.fixture
def sample_video(shared_data):
    if not SAMPLE_VIDEO.is_file():
        pytest.skip(f"the sample video {SAMPLE_VIDEO} is not there")
    return SAMPLE_VIDEO


def link(path, target) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)
    return path


@pytest.mark.slow
def test_prepare_whole_videos_via_the_cli_then_resume(tmp_path, sample_video, capsys):
    from datasets import load_from_disk

    from msmae.cli import main
    from msmae.data.prepare import prepare

    root = tmp_path / "download"
    base = root / "ASL_Citizen"
    write(base / "splits" / "train.csv", ASL_CITIZEN_HEADER + "P1,0001-SEE.mp4,SEE,C1\nP2,0002-HELLO.mp4,HELLO,C2\n")
    write(base / "splits" / "val.csv", ASL_CITIZEN_HEADER)
    write(base / "splits" / "test.csv", ASL_CITIZEN_HEADER + "P3,0003-HELLO.mp4,HELLO,C2\n")
    link(base / "videos" / "0001-SEE.mp4", sample_video)
    link(base / "videos" / "0003-HELLO.mp4", sample_video)  # 0002 is missing
    out = tmp_path / "prepared"
    assert main(["prepare", "asl_citizen", str(root), "--output_dir", str(out), "--no_progress"]) == 0

    data = load_from_disk(str(out))
    assert list(data) == ["train", "validation", "test"] and data["validation"].num_rows == 0
    assert data["train"].features["label"].names == ["SEE", "HELLO"]  # train.csv order, HELLO kept though missing
    row = data["test"][0]
    assert (row["label"], row["signer"], row["clip_id"], row["split"]) == (1, "P3", "0003-HELLO", "test")
    assert row["source"] == str(base / "videos" / "0003-HELLO.mp4") and row["num_frames"] == 58
    keypoints = np.asarray(row["keypoints"])
    assert keypoints.shape == (58, 160, 4) and np.asarray(row["keypoint_mask"]).any()
    assert (out / "missing.txt").read_text() == f"{base / 'videos' / '0002-HELLO.mp4'}\n"
    assert "ClassLabel` of 2 classes" in (out / "README.md").read_text()

    again = prepare("asl_citizen", root, out, progress=False)
    assert again.extraction.num_extracted == 0 and again.extraction.num_already_extracted == 2
    assert again.rows == {"train": 1, "validation": 0, "test": 1} and len(again.missing) == 1
    other = shutil.copytree(root, tmp_path / "another-download", symlinks=True)
    with pytest.raises(CorpusError, match="was prepared from"):  # one OUT holds one corpus and root
        prepare("asl_citizen", other, out, progress=False)


@pytest.mark.slow
def test_prepare_time_ranges_cut_from_one_decode_of_a_long_video(tmp_path, sample_video):
    from datasets import load_from_disk

    from msmae.data.prepare import prepare

    root, base = how2sign_root(tmp_path)  # the train clip 10 is pre-cut, clip 11 comes from the raw video
    raw = base / "video_level" / "train" / "rgb_front" / "raw_videos" / "--7E2sU6zP4-5-rgb_front.mp4"
    raw.unlink()
    link(raw, sample_video)
    clip = base / "sentence_level" / "train" / "rgb_front" / "raw_videos" / "--7E2sU6zP4_10-5-rgb_front.mp4"
    clip.unlink()  # so both sentences are cut from the raw video
    train = base / "sentence_level" / "train" / "text" / "en" / "raw_text" / "re_aligned"
    train = train / "how2sign_realigned_train.csv"
    write(train, H2S_HEADER +
          "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t10\t--7E2sU6zP4_10-5-rgb_front\t0.0\t0.5\tFirst part.\n"
          "--7E2sU6zP4\t--7E2sU6zP4-5-rgb_front\t11\t--7E2sU6zP4_11-5-rgb_front\t0.5\t1.5\tSecond part.\n")
    summary = prepare("how2sign", root, tmp_path / "out", progress=False)
    assert (summary.extraction.num_videos, summary.extraction.num_clips) == (1, 2)  # one source for both clips
    assert summary.rows == {"train": 2, "validation": 0, "test": 0}
    data = load_from_disk(str(tmp_path / "out"))
    assert "label" not in data["train"].features
    first, second = data["train"][0], data["train"][1]  # annotation order
    assert (first["text"], second["text"]) == ("First part.", "Second part.")
    fps = first["fps"]
    assert fps == pytest.approx(29.9, abs=0.2)
    # A time range holds the frames i with start <= i / fps < end.
    assert (first["start_frame"], first["end_frame"]) == (0, int(np.ceil(0.5 * fps)))
    assert (second["start_frame"], second["end_frame"]) == (int(np.ceil(0.5 * fps)), int(np.ceil(1.5 * fps)))
    assert second["num_frames"] == second["end_frame"] - second["start_frame"]
    assert second["source"] == str(raw)


@pytest.mark.slow
def test_prepare_frame_folders_with_text(tmp_path, sample_video):
    import av
    from datasets import load_from_disk

    from msmae.data.prepare import prepare

    with av.open(str(sample_video)) as container:
        frames = [frame.to_image() for _, frame in zip(range(6), container.decode(video=0))]
    root, folders = phoenix_root(tmp_path, count=0)
    for split, name in (("train", "01April_2010_Thursday_heute-6694"),
                        ("dev", "11August_2010_Wednesday_tagesschau-2/1")):
        for i, image in enumerate(frames):
            image.save(folders / split / name / f"images{i + 1:04d}.png")
    summary = prepare("phoenix14t", root, tmp_path / "out", progress=False)
    assert summary.rows == {"train": 1, "validation": 1, "test": 0} and len(summary.missing) == 1
    data = load_from_disk(str(tmp_path / "out"))
    row = data["validation"][0]
    assert row["text"] == "tiefer luftdruck bestimmt in den nächsten tagen unser wetter"
    assert (row["signer"], row["gloss"], row["split"]) == ("Signer08", "DRUCK TIEF KOMMEN", "validation")
    assert row["fps"] == 25.0 and row["num_frames"] == 6 and np.asarray(row["keypoint_mask"]).any()


def test_prepare_refuses_before_extracting(tmp_path, capsys):
    from msmae.cli import main
    from msmae.cli.prepare import PREPARE_EPILOG
    from msmae.data.corpora import READERS
    from msmae.data.prepare import prepare

    assert all(f"  {name} " in PREPARE_EPILOG for name in READERS)  # --help lists every corpus
    root = asl_citizen_root(tmp_path / "download")
    out = str(tmp_path / "out")
    for argv, message in ((["asl_citizen", str(root), "--subset", "100"], "--subset do(es) not apply to asl_citizen"),
                          (["msasl", str(root)], "Unknown corpus 'msasl'"),
                          (["wlasl", str(root)], "github.com/dxli94/WLASL")):
        with pytest.raises(SystemExit) as exit_info:
            main(["prepare", *argv, "--output_dir", out])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err
    for video in (root / "ASL_Citizen" / "videos").iterdir():
        video.unlink()
    with pytest.raises(CorpusError, match=r"No asl_citizen clips found .* name 5 sources and none is on disk"):
        prepare("asl_citizen", root, out)
    assert not (tmp_path / "out" / "extracted").exists()


@pytest.mark.slow
def test_prepare_wlasl_subset_with_a_raw_youtube_video_to_its_end(tmp_path, sample_video):
    from datasets import load_from_disk

    from msmae.data.prepare import prepare

    root = wlasl_root(tmp_path)  # 69241 is a cut clip in videos/, 70244/70245 are cut from the raw YouTube video
    glosses = json.loads((root / "WLASL_v0.3.json").read_text())
    youtube_url = glosses[1]["instances"][0]["url"]
    glosses[1]["instances"][1]["frame_start"] = 21  # 0.8 s, to the end (-1)
    glosses[1]["instances"].append(_instance("70246", "test", 3, url=youtube_url, start=101, end=-1))  # after its end
    write(root / "WLASL_v0.3.json", json.dumps(glosses))
    for video in (root / "videos" / "69241.mp4", root / "raw_videos_mp4" / "0UsjUE-TXns.mp4"):
        video.unlink()
        link(video, sample_video)
    (root / "videos" / "07069.mp4").unlink()
    (root / "raw_videos_mp4" / "65540.mp4").unlink()
    summary = prepare("wlasl", root, tmp_path / "out", subset=100, progress=False)
    assert summary.rows == {"train": 2, "validation": 0, "test": 1}
    assert summary.missing == [str(root / "videos" / f"{v}.mp4") for v in ("07069", "07070", "65540")]
    assert [(f["clip_id"], f["kind"]) for f in summary.failures] == [("70246", "out_of_range")]
    data = load_from_disk(str(tmp_path / "out"))
    names = data["train"].features["label"].names
    assert names[:2] == ["book", "drink"] and len(names) == 100
    whole, cut = data["train"][0], data["train"][1]  # annotation order: book's 69241, then drink's 70244
    assert (whole["clip_id"], whole["label"], whole["signer"], whole["num_frames"]) == ("69241", 0, "118", 58)
    fps = cut["fps"]
    # frame_start 11 and frame_end 60 are 1-based at 25 fps: seconds 0.4 to 2.4 (this 1.94 s video ends first).
    assert (cut["clip_id"], cut["label"], cut["start_frame"]) == ("70244", 1, int(np.ceil(0.4 * fps)))
    assert cut["start_frame"] + cut["num_frames"] == 58
    to_end = data["test"][0]  # frame_end -1: to the last frame
    assert (to_end["clip_id"], to_end["start_frame"]) == ("70245", int(np.ceil(0.8 * fps)))
    assert to_end["start_frame"] + to_end["num_frames"] == 58
