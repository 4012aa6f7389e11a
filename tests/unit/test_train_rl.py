"""RL of the READ/WRITE policy on a tiny random model: rollouts, rewards, learning, the CLI."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("accelerate")

from simulinterp.cli import main  # noqa: E402
from simulinterp.cli.common import policy_from  # noqa: E402
from simulinterp.llm.adapter_info import adapter_metadata  # noqa: E402
from simulinterp.train.config import RLConfig  # noqa: E402
from simulinterp.train.examples import ParallelPair  # noqa: E402
from simulinterp.train.rl import (  # noqa: E402
    advantages_of,
    per_token_rewards,
    reward_batch,
    train_rl,
)
from simulinterp.train.rollout import (  # noqa: E402
    Episode,
    Rollouts,
    RolloutSettings,
    Step,
    Trajectory,
    episodes_from_pairs,
    score_steps,
)
from tiny_qwen import PAIRS, make_model, make_tokenizer  # noqa: E402

pytestmark = pytest.mark.torch

NO_REWARDS = dict.fromkeys(
    ("listen", "proactive", "quality", "length", "format", "latency", "sequence_quality", "seqpo"),
    0.0,
)


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


# -- rollouts -------------------------------------------------------------------------------


def test_episodes_align_the_reference_to_the_steps() -> None:
    (episode,) = episodes_from_pairs([ParallelPair(*PAIRS[0], "zh", "en")])
    assert len(episode.source_units) == len(PAIRS[0][0])  # a step per character
    assert episode.reference == PAIRS[0][1]
    reads = episode.reference_reads
    assert list(reads) == sorted(reads) and 1 <= reads[0] and reads[-1] <= len(PAIRS[0][0])


def test_rollouts_keep_the_cache_and_score_what_they_sampled(tokenizer) -> None:
    model = make_model(tokenizer)
    episodes = episodes_from_pairs([ParallelPair(*p, "zh", "en") for p in PAIRS[:2]])
    rollouts = Rollouts(model, tokenizer, RolloutSettings(max_step_tokens=3, max_final_tokens=5))
    trajectories = rollouts.generate(episodes, 3, torch.Generator().manual_seed(0))
    assert [t.group for t in trajectories] == [0, 0, 0, 1, 1, 1]
    for trajectory in trajectories:
        assert [s.read for s in trajectory.steps] == list(
            range(1, len(trajectory.episode.source_units) + 1)
        )
        # each step's context is the last one's plus one source unit and what was written
        for before, after in zip(trajectory.steps, trajectory.steps[1:], strict=False):
            assert len(after.context_ids) > len(before.context_ids)
    # the batched, cached generation and one plain forward pass per step agree
    steps = [s for t in trajectories for s in t.steps]
    scored, _ = score_steps(model, steps, tokenizer.pad_token_id, rows_per_pass=7)
    for step, logprobs in zip(steps, scored, strict=True):
        assert logprobs.tolist() == pytest.approx(step.sample_logprobs, abs=1e-4)


@pytest.mark.parametrize(
    ("text", "final", "written"),
    [
        ("we need<wait> more", False, "we need"),
        ("<wait>we", False, ""),
        ("we need<wait> more", True, "we need more"),  # at the last step no more source comes
        ("we\nneed", False, "we"),
    ],
)
def test_the_wait_marker_ends_a_step(tokenizer, text: str, final: bool, written: str) -> None:
    rollouts = Rollouts(make_model(tokenizer), tokenizer, RolloutSettings())
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert rollouts._action_text(ids, final) == written
    assert rollouts._stops(ids, final) == (not final or "\n" in text)


# -- rewards and advantages on hand-made trajectories ---------------------------------------


def _trajectory(outputs: list[list[str]], group: int = 0) -> Trajectory:
    episode = Episode(("a", "b", "c"), ("x", "y"), (2, 3), "en", "en")
    steps = [
        Step(
            t,
            [1],
            [5, 6],
            " ".join(units),
            units,
            sample_logprobs=[-1.0, -1.0],
            policy_logprobs=[-1.0, -1.0],
            reference_logprobs=[-1.0, -2.0],
            values=[0.5, 0.5],
        )
        for t, units in enumerate(outputs, 1)
    ]
    return Trajectory(episode, group, steps)


def test_reward_batch_scores_every_step_and_sequence() -> None:
    waits = _trajectory([[], ["x"], ["y"]])  # the reference's own schedule
    eager = _trajectory([["x", "y"], [], []])
    config = RLConfig("m", "d", "o", stage=2, latency_threshold=1)
    scored = reward_batch([waits, eager], config)
    step = scored.step_components
    assert step["listen"] == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # eager reads when "x" is due
    assert step["proactive"] == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]  # nothing was due at step 1
    assert step["length"] == [0.0, 0.0, 0.0, -1.0, -1.0, -1.0]
    assert step["quality"][1] == pytest.approx(1.0) and step["quality"][3] == 0.0
    sequence = scored.sequence_components
    assert sequence["sequence_quality"] == [pytest.approx(1.0), pytest.approx(1.0)]
    assert sequence["latency"] == [-0.5, 0.0]  # waits [2, 1] against l = 1; eager [1]
    assert sequence["seqpo"][1] > sequence["seqpo"][0]  # same quality, less lagging
    assert len(scored.step_totals) == 6 and np.mean(scored.step_totals) == pytest.approx(0.0)
    # stage 1 leaves the sequence rewards out
    stage1 = reward_batch([waits, eager], RLConfig("m", "d", "o", stage=1))
    assert stage1.sequence_totals == [0.0, 0.0]


def test_token_rewards_put_the_kl_on_every_token_and_the_rewards_at_the_ends() -> None:
    trajectory = _trajectory([[], ["x"], ["y"]])
    scored = reward_batch([trajectory], RLConfig("m", "d", "o", stage=2))
    scored.step_totals[:] = [1.0, 2.0, 3.0]
    scored.sequence_totals[:] = [10.0]
    (tokens,) = per_token_rewards([trajectory], scored, beta=0.5)
    kl = -0.5 * 1.0  # -beta * (policy -1 minus reference -2), on the second token
    assert tokens.tolist() == pytest.approx([0.0, 1 + kl, 0.0, 2 + kl, 0.0, 3 + kl + 10.0])


def test_group_advantages_compare_rollouts_of_one_source() -> None:
    config = RLConfig("m", "d", "o", algorithm="group", group_size=2)
    trajectories = [_trajectory([[]] * 3, 0), _trajectory([[]] * 3, 0), _trajectory([[]] * 3, 1)]
    rewards = [np.full(6, 1.0), np.full(6, 3.0), np.full(6, 7.0)]
    advantages, _ = advantages_of(trajectories, rewards, config)
    assert advantages[0].tolist() == [-1.0] * 6 and advantages[1].tolist() == [1.0] * 6
    assert advantages[2].tolist() == [0.0] * 6  # a group of one learns nothing


# -- learning a toy task whose optimum is known ---------------------------------------------


def _latin_mass(model, tokenizer, episodes) -> float:
    """The exact expected format reward of the first step: the probability that the first
    token written is Latin letters (the toy's optimum is 1)."""
    rollouts = Rollouts(model, tokenizer, RolloutSettings())
    latin = torch.tensor(
        [
            bool(__import__("re").fullmatch(r"[A-Za-z ]+", tokenizer.decode([i])))
            for i in range(len(tokenizer))
        ]
    )
    total = 0.0
    with torch.no_grad():
        for episode in episodes:
            context = rollouts._head("en", "zh") + rollouts._source_pieces(episode)[0]
            context += rollouts._header
            logits = model(input_ids=torch.tensor([context])).logits[0, -1]
            total += float(torch.softmax(logits.float(), -1)[latin].sum())
    return total / len(episodes)


@pytest.mark.parametrize("algorithm", ["ppo", "group"])
def test_a_few_updates_learn_the_toy_task(algorithm, tokenizer, tiny_checkpoint, tmp_path):
    # toy: one token per step, rewarded when it is Latin letters (format regex)
    episodes = [
        Episode(tuple(en.split()[:4]), tuple(zh[:4]), (1, 2, 3, 4), "en", "zh")
        for zh, en in PAIRS[:4]
    ]
    config = RLConfig(
        model=str(tiny_checkpoint),
        data="-",
        output=str(tmp_path / "out"),
        algorithm=algorithm,
        full=True,
        updates=8,
        sources_per_update=4,
        group_size=4,
        max_step_tokens=1,
        max_final_tokens=1,
        learning_rate=1e-2,
        weights={**NO_REWARDS, "format": 1.0},
        format_regex=r"[A-Za-z ]+",
        kl_beta=0.01,
    )
    result = train_rl(config, episodes=episodes)
    start = make_model(tokenizer)  # the checkpoint's weights (same seed)
    import transformers

    trained = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    before, after = (
        _latin_mass(start, tokenizer, episodes),
        _latin_mass(trained, tokenizer, episodes),
    )
    assert after > before + 0.15, (before, after)
    log = result.history
    assert np.mean([r["r_format"] for r in log[-2:]]) > log[0]["r_format"]
    changed = any(
        not torch.equal(a, b) for a, b in zip(start.parameters(), trained.parameters(), strict=True)
    )
    assert changed
    assert all(0 <= r["kl"] < 5 for r in log[1:]) and log[0]["kl"] == pytest.approx(0, abs=1e-4)
    betas = [r["beta"] for r in log]
    assert betas[-1] > betas[1]  # KL above its target: the controller raised beta


# -- the command, its outputs, and the next stage --------------------------------------------


def test_train_rl_stage_1_then_2_and_eval_the_result(
    tiny_checkpoint, tiny_parallel, tmp_path, capsys
):
    stage1 = tmp_path / "stage1"
    common = ["--data", str(tiny_parallel), "--direction", "en-zh", "--updates", "2"]
    common += ["--sources", "2"]
    common += ["--max-step-tokens", "2", "--max-final-tokens", "4", "--lr", "1e-3"]
    argv = ["train", "rl", "--model", str(tiny_checkpoint), "--output", str(stage1), *common]
    argv += ["--eval-data", str(tiny_parallel), "--eval-limit", "2"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "update 2/2" in err and "KL" in err and "chrF" in err
    assert "held out (2 sentences): reward" in err
    evaluation = json.loads((stage1 / "rl_eval.json").read_text())
    assert set(evaluation) == {"before", "after"} and "LAAL" in evaluation["after"]
    log = [json.loads(x) for x in (stage1 / "rl_log.jsonl").read_text().splitlines()]
    keys = {"r_listen", "r_proactive", "r_quality", "r_length", "r_format", "r_latency"}
    keys |= {"kl", "beta", "policy_loss", "value_loss", "AL", "LAAL", "BLEU", "chrF"}
    assert keys <= set(log[0]) and [r["update"] for r in log] == [1, 2]
    assert (stage1 / "rl_curves.png").stat().st_size > 0
    assert adapter_metadata(stage1)["policy"] == "learned"
    assert adapter_metadata(stage1)["base_model"] == str(tiny_checkpoint)
    stage2 = tmp_path / "stage2"
    argv = ["train", "rl", "--model", str(stage1), "--stage", "2", "--output", str(stage2)]
    assert main([*argv, *common]) == 0
    metadata = adapter_metadata(stage2)
    assert metadata["stage"] == 2 and metadata["base_model"] == str(tiny_checkpoint)
    assert metadata["start"] == str(stage1)
    args = argparse.Namespace(
        policy="learned", adapter=str(stage2), source_lang="en", target_lang="zh"
    )
    assert policy_from(args).stop_strings == ("<wait>",)  # the adapter's own marker
    out, folder = tmp_path / "eval", tiny_parallel / "toy_en-zh"
    for name in ("source.txt", "ref.txt"):  # two lines are enough to run it
        lines = (folder / name).read_text(encoding="utf-8").splitlines()[:2]
        (tmp_path / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = ["eval", "--source", str(tmp_path / "source.txt"), "--reference"]
    argv += [str(tmp_path / "ref.txt"), "--output", str(out)]
    argv += ["--backend", "transformers", "--model", str(tiny_checkpoint)]
    argv += ["--adapter", str(stage2), "--from", "en", "--to", "zh", "--policy", "learned"]
    argv += ["--no-offline"]
    assert main(argv) == 0
    scores = json.loads((out / "scores.json").read_text())
    assert scores["policy"] == "learned" and "BLEU" in scores


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--weight", "nonsense=1"], "unknown rewards nonsense"),
        (["--weight", "quality"], "NAME=NUMBER"),
        (["--algorithm", "group", "--group-size", "1"], "group_size >= 2"),
    ],
)
def test_train_rl_bad_settings(tiny_checkpoint, tiny_parallel, tmp_path, capsys, extra, message):
    argv = ["train", "rl", "--model", str(tiny_checkpoint), "--data", str(tiny_parallel)]
    assert main([*argv, "--output", str(tmp_path), *extra]) == 2
    assert message in capsys.readouterr().err


def test_two_processes_under_torchrun_train_one_policy(tiny_checkpoint, tiny_parallel, tmp_path):
    """Data-parallel RL on the CPU (gloo), as torchrun runs it on GPUs: each process rolls out
    its own sources (of different lengths) and the gradients are averaged."""
    import os
    import subprocess
    import sys

    argv = ["-m", "simulinterp", "train", "rl", "--model", str(tiny_checkpoint)]
    argv += ["--data", str(tiny_parallel), "--updates", "2", "--sources", "1"]
    argv += ["--max-step-tokens", "2", "--max-final-tokens", "3", "--minibatch-rows", "3"]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    done = subprocess.run(
        [*launcher, *argv, "--output", str(tmp_path / "two")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.count("done:") == 1  # only the main process reports
    log = (tmp_path / "two" / "rl_log.jsonl").read_text().splitlines()
    assert [json.loads(x)["update"] for x in log] == [1, 2]
    assert (tmp_path / "two" / "adapter_model.safetensors").is_file()
