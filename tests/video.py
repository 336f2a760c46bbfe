"""Write a Y4M video (what Chromium's fake camera plays) from still frames."""
import numpy as np
from PIL import Image


def write_y4m(path, frames, fps=30):
    """`frames`: RGB arrays of one even size. 4:2:0 chroma, as Chromium's file capture expects."""
    height, width = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, cb, cr = (np.asarray(c) for c in Image.fromarray(frame).convert("YCbCr").split())
            f.write(b"FRAME\n")
            f.write(y.tobytes())
            for chroma in (cb, cr):
                f.write(np.asarray(Image.fromarray(chroma).resize((width // 2, height // 2),
                                                                 Image.Resampling.BILINEAR)).tobytes())
    return path
