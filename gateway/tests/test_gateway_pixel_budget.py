"""imaging.PixelBudget: decodes hold their pixels in arrival order, within a limit, across threads;
decode_resized holds what it really decodes (a JPEG's reduced DCT scale, a PNG's full size)."""

import contextlib
import io
import threading
import time

from PIL import Image

from gateway.imaging import PixelBudget, decode_resized


def _holder(budget: PixelBudget, name: str, pixels: int, entered: list, release: threading.Event):
    def run():
        with budget.hold(pixels):
            entered.append((name, budget.held))
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_holds_wait_in_arrival_order_within_the_limit():
    budget = PixelBudget(100)
    entered: list[tuple[str, int]] = []
    releases = {name: threading.Event() for name in "abc"}
    a = _holder(budget, "a", 60, entered, releases["a"])
    time.sleep(0.1)
    b = _holder(budget, "b", 60, entered, releases["b"])  # 60 + 60 > 100: waits for a
    time.sleep(0.1)
    c = _holder(budget, "c", 10, entered, releases["c"])  # would fit beside a, but b came first
    time.sleep(0.2)
    assert entered == [("a", 60)]
    releases["a"].set()
    a.join(5)
    time.sleep(0.2)
    assert entered == [("a", 60), ("b", 60), ("c", 70)]  # b, then c beside it
    releases["b"].set()
    releases["c"].set()
    b.join(5)
    c.join(5)
    assert budget.held == 0


def test_a_hold_above_the_limit_takes_the_whole_budget_and_is_given_back_on_error():
    budget = PixelBudget(100)
    try:
        with budget.hold(10**9):
            assert budget.held == 100
            raise ValueError("decode failed")
    except ValueError:
        pass
    assert budget.held == 0
    with budget.hold(100):
        assert budget.held == 100


class _Recording(PixelBudget):
    def __init__(self):
        super().__init__(10**9)
        self.holds: list[int] = []

    @contextlib.contextmanager
    def hold(self, pixels):
        self.holds.append(pixels)
        with super().hold(pixels):
            yield


def _encoded(size, fmt) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (120, 40, 200)).save(out, fmt)
    return out.getvalue()


def test_decode_holds_a_jpegs_reduced_scale_and_other_formats_full_size():
    photo = _encoded((4032, 3024), "JPEG")
    with Image.open(io.BytesIO(photo)) as drafted:
        drafted.draft("RGB", (299, 299))  # libjpeg's 1/8 scale, as Pillow computes it
        reduced = drafted.width * drafted.height
    assert reduced < 4032 * 3024 // 32
    budget = _Recording()
    decode_resized(photo, 299, 299, 10**8, budget)
    decode_resized(_encoded((2000, 1500), "PNG"), 299, 299, 10**8, budget)
    decode_resized(_encoded((2000, 1500), "PNG"), 299, 299, 10**8)  # no budget: nothing held
    assert budget.holds == [reduced, 2000 * 1500]
    assert budget.held == 0
