"""Offline training of the shipped policy: compact PPO on the TensorTrade env, over several seeds, selected on
validation dates and reported on held-out dates against buy-and-hold and the rule baseline; ONNX export (FP32 +
dynamic INT8) of the selected policy and the model card that records it all.

Timeframes. ``5Min`` (the default): training bars are the fake venue's own seeded intraday paths of the real daily
files, rolled to 5-minute decision bars exactly as the engine rolls the stream's minutes
(``adapters.tensortrade.intraday``); an episode is one whole session, costs are the venue's whole-cent touch plus
seeded slippage, and the reward charges a turnover penalty on top. ``1Day``: the first model's setup (random
windows of daily bars), kept for comparison.

Walk-forward split: train on sessions up to ``train_end``, select (checkpoint per seed, then the seed) on
``train_end`` .. ``validation_end``, report on what follows (the held-out range ``ttlive evaluate`` draws from).

``ttlive train`` (tools/cmd_train.py) runs ``train``; the default model in adapters/policy/models/default/ came
from ``ttlive train --out adapters/policy/models/default`` with the defaults below.
"""

from __future__ import annotations

# torch before anything that imports tensortrade (feasibility notes: the other order has crashed torch).
import torch  # isort: skip

import concurrent.futures
import copy
import hashlib
import json
import multiprocessing
import platform
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from adapters.policy.actions import ACTION_SPACE_VERSION, ACTION_TABLE, N_ACTIONS, action_label
from adapters.policy.onnx_policy import MODEL_SCHEMA, OnnxPolicy
from adapters.policy.rule_policy import RulePolicy
from adapters.tensortrade.env import (
    DEFAULT_DATA_DIR,
    DailyBars,
    EpisodeResult,
    ExecutionModel,
    TradingGymEnv,
    build_env,
    load_daily_bars,
    run_episode,
)
from core.features import DEFAULT_SPEC, FEATURE_SCHEMA_VERSION, feature_names

INPUT_NAME = "features"
OUTPUT_NAMES = ("logits", "action")
Chooser = Callable[[np.ndarray], Sequence[int] | np.ndarray]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    symbols: tuple[str, ...] = ("NVDA", "ORCL", "YHOO")
    timeframe: str = "5Min"  # the bars trained on: "5Min" (the fake's intraday paths) or "1Day" (the daily files)
    train_start: str = "2001-01-01"  # first training session (intraday: older data only adds generation time)
    train_end: str = "2008-12-31"  # walk-forward split: train up to here ...
    validation_end: str = "2010-12-31"  # ... select checkpoints and the seed up to here, hold out the rest
    held_out_end: str = "2014-12-31"
    timesteps: int = 320_000  # per seed
    seeds: tuple[int, ...] = (1, 2, 3, 4, 5)
    checkpoints: int = 4  # validation evaluations per seed (the best one is that seed's policy)
    validation_sessions: int = 80  # per symbol, drawn (fixed seed) from the validation range
    held_out_sessions: int = 150  # per symbol, drawn (fixed seed) from the held-out range
    evaluation_path_seed: int = 0  # the intraday paths validation and held-out sessions are played on
    turnover_penalty_bps: float = 5.0  # charged in the reward per dollar traded, on top of the touch and slippage
    workers: int = 1  # seeds trained in parallel processes
    out_dir: Path = Path("adapters/policy/models/default")
    data_dir: Path = DEFAULT_DATA_DIR
    episode_bars: int = 256  # daily only: training episodes are random windows of this many bars
    n_steps: int = 256  # per env per PPO update
    epochs: int = 4
    minibatch: int = 256
    learning_rate: float = 3e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    entropy_coef: float = 0.01
    value_coef: float = 0.5
    max_grad_norm: float = 0.5
    hidden: int = 64
    reward_scale: float = 1000.0  # 5-minute log returns are ~1e-3: scale up for the value head
    tiny: bool = False
    # The model contract's decision interval. Intraday training is on bars of this interval; daily training
    # states in the contract that it is a deployment choice.
    decision_interval_s: float = 300.0

    @classmethod
    def tiny_preset(cls, **overrides: Any) -> TrainConfig:
        """Seconds, not minutes: the end-to-end test's configuration."""
        base = cls(symbols=("NVDA", "ORCL"), train_start="2008-01-01", timesteps=2_048, seeds=(7, 8), checkpoints=2,
                   n_steps=128, minibatch=128, validation_sessions=6, held_out_sessions=8, tiny=True)
        return replace(base, **overrides)

    @property
    def intraday(self) -> bool:
        return self.timeframe != "1Day"


class ActorCritic(nn.Module):
    """Separate policy and value MLPs; only the policy (its argmax) is exported and shipped."""

    def __init__(self, n_features: int, n_actions: int, hidden: int) -> None:
        super().__init__()
        self.policy = nn.Sequential(
            nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, n_actions)
        )
        self.value = nn.Sequential(
            nn.Linear(n_features, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, 1)
        )

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy(features), self.value(features).squeeze(-1)


class ExportHead(nn.Module):
    """The deterministic action head: logits and their argmax."""

    def __init__(self, policy: nn.Module) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.policy(features)
        return logits, torch.argmax(logits, dim=1)


def argmax_chooser(policy: nn.Module) -> Chooser:
    """The deterministic policy exactly as exported (argmax of the logits), without an ONNX round trip."""

    def choose(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.argmax(policy(torch.from_numpy(np.asarray(observations, np.float32))), dim=1).numpy()

    return choose


@dataclass
class _Rollout:
    observations: np.ndarray
    actions: np.ndarray
    log_probs: np.ndarray
    values: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    episode_returns: list[float] = field(default_factory=list)


def _collect(
    model: ActorCritic, envs: Sequence[TradingGymEnv], observations: np.ndarray, config: TrainConfig,
    running_returns: np.ndarray,
) -> tuple[_Rollout, np.ndarray]:
    n_envs, n_features = observations.shape
    shape = (config.n_steps, n_envs)
    rollout = _Rollout(
        np.zeros((*shape, n_features), np.float32), np.zeros(shape, np.int64), np.zeros(shape, np.float32),
        np.zeros(shape, np.float32), np.zeros(shape, np.float32), np.zeros(shape, np.float32),
    )
    for t in range(config.n_steps):
        with torch.no_grad():
            logits, values = model(torch.from_numpy(observations))
            distribution = torch.distributions.Categorical(logits=logits)
            actions = distribution.sample()
            log_probs = distribution.log_prob(actions)
        rollout.observations[t] = observations
        rollout.actions[t] = actions.numpy()
        rollout.log_probs[t] = log_probs.numpy()
        rollout.values[t] = values.numpy()
        for i, env in enumerate(envs):
            observation, reward, terminated, truncated, _ = env.step(int(actions[i]))
            reward *= config.reward_scale
            running_returns[i] += reward / config.reward_scale
            if truncated:  # end of data is not the end of the world: bootstrap from the last observation
                with torch.no_grad():
                    _, tail_value = model(torch.from_numpy(observation[None, :]))
                reward += config.gamma * float(tail_value[0])
            rollout.rewards[t, i] = reward
            rollout.dones[t, i] = float(terminated or truncated)
            if terminated or truncated:
                rollout.episode_returns.append(float(running_returns[i]))
                running_returns[i] = 0.0
                observation, _ = env.reset()
            observations[i] = observation
    return rollout, observations


def _advantages(
    model: ActorCritic, rollout: _Rollout, last_observations: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        _, last_values = model(torch.from_numpy(last_observations))
    next_values = last_values.numpy()
    advantages = np.zeros_like(rollout.rewards)
    running = np.zeros(rollout.rewards.shape[1], np.float32)
    for t in reversed(range(config.n_steps)):
        not_done = 1.0 - rollout.dones[t]
        delta = rollout.rewards[t] + config.gamma * next_values * not_done - rollout.values[t]
        running = delta + config.gamma * config.gae_lambda * not_done * running
        advantages[t] = running
        next_values = rollout.values[t]
    return advantages, advantages + rollout.values


def _update(
    model: ActorCritic, optimizer: torch.optim.Optimizer, rollout: _Rollout, advantages: np.ndarray,
    returns: np.ndarray, config: TrainConfig, rng: np.random.Generator,
) -> dict[str, float]:
    n = advantages.size
    obs = torch.from_numpy(rollout.observations.reshape(n, -1))
    actions = torch.from_numpy(rollout.actions.reshape(n))
    old_log_probs = torch.from_numpy(rollout.log_probs.reshape(n))
    adv = advantages.reshape(n)
    adv_t = torch.from_numpy(((adv - adv.mean()) / (adv.std() + 1e-8)).astype(np.float32))
    returns_t = torch.from_numpy(returns.reshape(n).astype(np.float32))
    stats: dict[str, float] = {}
    for _ in range(config.epochs):
        order = rng.permutation(n)
        for begin in range(0, n, config.minibatch):
            index = torch.from_numpy(order[begin : begin + config.minibatch])
            logits, values = model(obs[index])
            distribution = torch.distributions.Categorical(logits=logits)
            log_probs = distribution.log_prob(actions[index])
            ratio = torch.exp(log_probs - old_log_probs[index])
            surrogate = torch.min(
                ratio * adv_t[index], torch.clamp(ratio, 1 - config.clip, 1 + config.clip) * adv_t[index]
            )
            policy_loss = -surrogate.mean()
            value_loss = ((values - returns_t[index]) ** 2).mean()
            entropy = distribution.entropy().mean()
            loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            stats = {"policy_loss": policy_loss.item(), "value_loss": value_loss.item(), "entropy": entropy.item()}
    return stats


def export_onnx(policy: nn.Module, n_features: int, fp32_path: Path, int8_path: Path) -> None:
    """FP32 via the TorchScript exporter (dynamic batch), INT8 via onnxruntime dynamic quantization."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    head = ExportHead(policy).eval()
    dynamic = {INPUT_NAME: {0: "batch"}, OUTPUT_NAMES[0]: {0: "batch"}, OUTPUT_NAMES[1]: {0: "batch"}}
    torch.onnx.export(
        head, (torch.zeros(1, n_features),), str(fp32_path), input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic, opset_version=17, dynamo=False,
    )
    # reduce_range (7-bit weights) because this machine kind has AVX2 but no VNNI: full-range int8 per-channel
    # weights saturate the u8 x s8 multiply there (measured: 87% vs 99% argmax agreement on a tiny model).
    quantize_dynamic(str(fp32_path), str(int8_path), weight_type=QuantType.QInt8, per_channel=True, reduce_range=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _versions() -> dict[str, str]:
    names = ("tensortrade", "torch", "onnx", "onnxruntime", "numpy", "gymnasium")
    versions = {name: metadata.version(name) for name in names}
    versions["python"] = platform.python_version()
    return versions




def _episode_json(result: EpisodeResult) -> dict[str, Any]:
    return {
        "symbol": result.symbol, "first_date": result.first_date, "last_date": result.last_date,
        "steps": result.steps, "fills": result.fills, "log_return": round(result.log_return, 6),
        "buy_and_hold_log_return": round(result.buy_and_hold_log_return, 6),
    }


# --- data: what each phase plays on --------------------------------------------------------------------------


@dataclass
class Phase:
    """One symbol's bars and the episodes (bar spans) a phase plays on them."""

    data: DailyBars
    spans: list[tuple[int, int]]
    dates: tuple[str, str] = ("", "")  # first and last date of the phase's range (before any sampling)

    def __post_init__(self) -> None:
        if self.spans and not self.dates[0]:
            self.dates = (_span_date(self.data, self.spans[0][0]), _span_date(self.data, self.spans[-1][1] - 1))


def _span_date(data: DailyBars, index: int) -> str:
    return str(data.dates[index])[:10]


def _pick(spans: list[tuple[int, int]], count: int, label: str) -> list[tuple[int, int]]:
    """A fixed, seeded sample of ``count`` spans (all of them when fewer), in time order."""
    if len(spans) <= count:
        return spans
    return sorted(random.Random(label).sample(spans, count))


def load_training_data(config: TrainConfig, seed: int) -> dict[str, Phase]:
    """Per symbol, the bars training draws episodes from: intraday paths at this seed's path seed (another
    realisation of the same real days per seed), or the daily file."""
    out: dict[str, Phase] = {}
    for symbol in config.symbols:
        if config.intraday:
            from adapters.tensortrade.intraday import load_session_bars, timeframe_seconds

            data = load_session_bars(symbol, first=config.train_start, last=config.train_end, path_seed=seed,
                                     interval_s=timeframe_seconds(config.timeframe), data_dir=config.data_dir)
            spans = data.session_spans(0, len(data))
        else:
            data = load_daily_bars(symbol, config.data_dir)
            stop = data.first_index_after(config.train_end)
            if stop <= DEFAULT_SPEC.lookback_bars + config.episode_bars:
                raise ValueError(f"{symbol}: --train-end {config.train_end} leaves no usable training window")
            spans = [(0, stop)]
        if not spans:
            raise ValueError(f"{symbol}: no training session between {config.train_start} and {config.train_end}")
        out[symbol] = Phase(data, spans)
    return out


def load_evaluation_data(config: TrainConfig) -> tuple[dict[str, Phase], dict[str, Phase]]:
    """(validation, held out) per symbol, on the fixed evaluation paths."""
    validation: dict[str, Phase] = {}
    held_out: dict[str, Phase] = {}
    for symbol in config.symbols:
        if config.intraday:
            from adapters.tensortrade.intraday import load_session_bars, timeframe_seconds

            warm = str(np.datetime64(config.train_end, "D") - 10)  # bars of the sessions before, for features
            data = load_session_bars(symbol, first=warm, last=config.held_out_end,
                                     path_seed=config.evaluation_path_seed,
                                     interval_s=timeframe_seconds(config.timeframe), data_dir=config.data_dir)
            spans = data.session_spans(0, len(data))
            val = [s for s in spans if config.train_end < _span_date(data, s[0]) <= config.validation_end]
            held = [s for s in spans if _span_date(data, s[0]) > config.validation_end]
            if not val or not held:
                raise ValueError(f"{symbol}: no validation or held-out sessions after {config.train_end}")
            validation[symbol] = Phase(data, _pick(val, config.validation_sessions, f"validation-{symbol}"),
                                       Phase(data, val).dates)
            held_out[symbol] = Phase(data, _pick(held, config.held_out_sessions, f"held-out-{symbol}"),
                                     Phase(data, held).dates)
            continue
        else:
            data = load_daily_bars(symbol, config.data_dir)
            a, b = data.first_index_after(config.train_end), data.first_index_after(config.validation_end)
            c = data.first_index_after(config.held_out_end)
            val, held = [(a, b)] if b > a + 1 else [], [(b, c)] if c > b + 1 else []
        if not val or not held:
            raise ValueError(f"{symbol}: no validation or held-out dates after {config.train_end} in the data")
        validation[symbol] = Phase(data, val)
        held_out[symbol] = Phase(data, held)
    return validation, held_out


def _execution(config: TrainConfig) -> ExecutionModel:
    return ExecutionModel(tick_usd=0.01) if config.intraday else ExecutionModel()


def play(config: TrainConfig, phases: dict[str, Phase], choose: Chooser, seed: int = 0) -> list[EpisodeResult]:
    """Every span of every symbol, played by a deterministic chooser from a flat start (costs included, no
    turnover penalty: what an account would have earned)."""
    results: list[EpisodeResult] = []
    for i, (_symbol, phase) in enumerate(sorted(phases.items())):
        env = build_env(phase.data, first=0, stop=len(phase.data), seed=seed * 1000 + i, execution=_execution(config))
        results.extend(run_episode(env, choose, span) for span in phase.spans)
    return results


def summarise(results: Sequence[EpisodeResult]) -> dict[str, Any]:
    """Per episode (intraday: per session) statistics of a played phase, returns in bps of the start."""
    returns = [r.log_return * 1e4 for r in results]
    holds = [r.buy_and_hold_log_return * 1e4 for r in results]
    turnover = [r.traded_usd / r.start_usd if r.start_usd else 0.0 for r in results]
    return {
        "episodes": len(results),
        "mean_bps": round(statistics.fmean(returns), 3),
        "median_bps": round(statistics.median(returns), 3),
        "std_bps": round(statistics.pstdev(returns), 3),
        "winning_share": round(sum(r > 0 for r in returns) / len(returns), 4),
        "losing_share": round(sum(r < 0 for r in returns) / len(returns), 4),
        "fills_mean": round(statistics.fmean(r.fills for r in results), 3),
        "fills_max": max(r.fills for r in results),
        "turnover_mean": round(statistics.fmean(turnover), 4),
        "buy_and_hold_mean_bps": round(statistics.fmean(holds), 3),
    }


# --- PPO for one seed ---------------------------------------------------------------------------------------


def train_seed(config: TrainConfig, seed: int) -> dict[str, Any]:
    """Train one seed; evaluate ``config.checkpoints`` checkpoints on the validation sessions; return the best
    checkpoint's policy weights with every checkpoint's validation summary and the held-out summary of the best.
    A top-level function so a process pool can run seeds side by side."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # a shared 2-core machine; also keeps float reductions in one order
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    training = load_training_data(config, seed)
    validation, held_out = load_evaluation_data(config)
    envs: list[TradingGymEnv] = []
    for i, (_symbol, phase) in enumerate(sorted(training.items())):
        first, stop = phase.spans[0][0], phase.spans[-1][1]
        envs.append(build_env(phase.data, first=first, stop=stop,
                              episode_bars=None if config.intraday else config.episode_bars,
                              seed=seed * 1000 + i, execution=_execution(config),
                              turnover_penalty_bps=config.turnover_penalty_bps))
    n_features = DEFAULT_SPEC.n_features
    model = ActorCritic(n_features, N_ACTIONS, config.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    observations = np.stack([env.reset(seed=seed * 1000 + i)[0] for i, env in enumerate(envs)])
    running_returns = np.zeros(len(envs))
    per_update = config.n_steps * len(envs)
    updates = max(1, config.timesteps // per_update)
    marks = sorted({max(1, round(updates * (k + 1) / config.checkpoints)) for k in range(config.checkpoints)})
    recent: list[float] = []
    checkpoints: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any]] | None = None
    for update in range(1, updates + 1):
        rollout, observations = _collect(model, envs, observations, config, running_returns)
        advantages, returns = _advantages(model, rollout, observations, config)
        stats = _update(model, optimizer, rollout, advantages, returns, config, rng)
        recent = (recent + rollout.episode_returns)[-50:]
        if update in marks:
            chooser = argmax_chooser(model.policy)
            summary = summarise(play(config, validation, chooser, seed=config.evaluation_path_seed))
            checkpoints.append({"update": update, "timesteps": update * per_update, "validation": summary})
            score = summary["mean_bps"]
            if best is None or score > best[0]:
                best = (score, update, copy.deepcopy(model.policy.state_dict()))
            mean_return = float(np.mean(recent)) * 1e4 if recent else float("nan")
            print(f"seed {seed}: update {update}/{updates}  training episode {mean_return:+.1f} bps (last 50)  "
                  f"entropy {stats['entropy']:.3f}  validation {score:+.2f} bps/episode, "
                  f"{summary['fills_mean']:.1f} fills", flush=True)
    assert best is not None
    policy = ActorCritic(n_features, N_ACTIONS, config.hidden).policy
    policy.load_state_dict(best[2])
    held = summarise(play(config, held_out, argmax_chooser(policy), seed=config.evaluation_path_seed))
    return {
        "seed": seed, "timesteps": updates * per_update, "best_update": best[1], "validation_score_bps": best[0],
        "checkpoints": checkpoints, "held_out": held, "train_seconds": round(time.perf_counter() - started, 1),
        "state_dict": {k: v.numpy().tolist() for k, v in best[2].items()},
    }


def _policy_from(result: dict[str, Any], config: TrainConfig) -> nn.Module:
    policy = ActorCritic(DEFAULT_SPEC.n_features, N_ACTIONS, config.hidden).policy
    policy.load_state_dict({k: torch.tensor(v, dtype=torch.float32) for k, v in result["state_dict"].items()})
    return policy.eval()


def _run_seeds(config: TrainConfig) -> list[dict[str, Any]]:
    if config.workers <= 1 or len(config.seeds) == 1:
        return [train_seed(config, seed) for seed in config.seeds]
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with concurrent.futures.ProcessPoolExecutor(min(config.workers, len(config.seeds)), mp_context=context) as pool:
        return list(pool.map(train_seed, [config] * len(config.seeds), config.seeds))


# --- the whole run ------------------------------------------------------------------------------------------


def train(config: TrainConfig, log: Any = print) -> dict[str, Any]:
    """Train every seed, select on validation, export the selected policy, write model.json + model_card.md."""
    if config.intraday:
        from adapters.tensortrade.intraday import timeframe_seconds

        if timeframe_seconds(config.timeframe) != int(config.decision_interval_s):
            raise ValueError(f"--timeframe {config.timeframe} trains on bars of {timeframe_seconds(config.timeframe)}"
                             f" s; the contract's decision interval is {config.decision_interval_s:g} s: make them "
                             "agree (a policy decides on the bars it learnt)")
    if not config.seeds:
        raise ValueError("give at least one training seed")
    started = time.perf_counter()
    seeds = _run_seeds(config)
    chosen = max(seeds, key=lambda r: (r["validation_score_bps"], -r["seed"]))
    policy = _policy_from(chosen, config)
    validation, held_out = load_evaluation_data(config)
    rule = RulePolicy()
    baselines = {
        "rule": {"validation": summarise(play(config, validation, rule.infer, seed=config.evaluation_path_seed)),
                 "held_out": summarise(play(config, held_out, rule.infer, seed=config.evaluation_path_seed))},
    }

    out = config.out_dir
    out.mkdir(parents=True, exist_ok=True)
    n_features = DEFAULT_SPEC.n_features
    fp32_path, int8_path = out / "policy_fp32.onnx", out / "policy_int8.onnx"
    export_onnx(policy, n_features, fp32_path, int8_path)
    model_id = f"ppo-{'-'.join(s.lower() for s in config.symbols)}-{_sha256(fp32_path)[:8]}"
    training = load_training_data(config, chosen["seed"])
    meta = _metadata(config, model_id, training, validation, held_out, chosen, fp32_path, int8_path)
    (out / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")  # what OnnxPolicy loads

    # The shipped policy through the shipped runtime (ONNX): held-out per symbol, INT8 agreement, actions.
    fp32 = OnnxPolicy(out, precision="fp32")
    int8 = OnnxPolicy(out, precision="int8")
    results = play(config, held_out, fp32.infer, seed=config.evaluation_path_seed)
    observations = np.concatenate([r.observations for r in results])
    batches = [observations[i : i + 512] for i in range(0, len(observations), 512)]  # the runtime's batch limit
    agreement = float(np.mean(np.concatenate([fp32.infer(b) == int8.infer(b) for b in batches])))
    counts = np.sum([r.action_counts for r in results], axis=0)
    total = int(counts.sum())
    per_symbol = {s: summarise([r for r in results if r.symbol == s]) for s in config.symbols}
    meta["selection"] = {
        "rule": "each seed keeps its checkpoint with the best mean validation return per episode; the seed with "
                "the best of those is shipped",
        "shipped_seed": chosen["seed"],
        "seeds": [{k: v for k, v in r.items() if k != "state_dict"} for r in seeds],
        "baselines": baselines,
    }
    meta["results"] = {
        "held_out_fp32": summarise(results),
        "held_out_fp32_by_symbol": per_symbol,
        "held_out_action_distribution": {action_label(i): round(int(c) / total, 4) for i, c in enumerate(counts) if c},
        "int8_vs_fp32_action_agreement": round(agreement, 6),
        "agreement_observations": len(observations),
    }
    (out / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    (out / "model_card.md").write_text(render_model_card(meta))
    log(f"trained {len(seeds)} seeds x {chosen['timesteps']} steps in {time.perf_counter() - started:.0f}s; shipped "
        f"seed {chosen['seed']} ({model_id}); INT8/FP32 agreement {agreement:.4f}")
    for symbol, row in per_symbol.items():
        log(f"held-out {symbol}: policy {row['mean_bps']:+.2f} bps/episode, {row['fills_mean']:.1f} fills vs "
            f"buy-and-hold {row['buy_and_hold_mean_bps']:+.2f}")
    return meta


def _span_dates(phases: dict[str, Phase], symbol: str) -> list[str]:
    return list(phases[symbol].dates)


def _metadata(
    config: TrainConfig, model_id: str, training: dict[str, Phase], validation: dict[str, Phase],
    held_out: dict[str, Phase], chosen: dict[str, Any], fp32_path: Path, int8_path: Path,
) -> dict[str, Any]:
    spec = DEFAULT_SPEC
    hyper = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(config).items()
             if k not in ("out_dir", "data_dir", "symbols", "decision_interval_s", "workers")}
    return {
        "schema": MODEL_SCHEMA,
        "model_id": model_id,
        "feature_schema_version": FEATURE_SCHEMA_VERSION,
        "feature_spec": {k: getattr(spec, k) for k in spec.__dataclass_fields__},
        "feature_names": feature_names(spec),
        "n_features": spec.n_features,
        "action_space_version": ACTION_SPACE_VERSION,
        "actions": [action.to_json() for action in ACTION_TABLE],
        "long_only": True,
        "input_name": INPUT_NAME,
        "output_names": list(OUTPUT_NAMES),
        "files": {
            "fp32": {"path": fp32_path.name, "sha256": _sha256(fp32_path)},
            "int8": {"path": int8_path.name, "sha256": _sha256(int8_path)},
        },
        "training": {
            "algorithm": "PPO (clipped surrogate, GAE), torch MLP 2x64 tanh, own implementation",
            "environment": "TensorTrade 1.0.3 default.create; adapters/tensortrade/env.py execution model",
            "timeframe": config.timeframe,
            "execution_model": {k: str(v) for k, v in asdict(_execution(config)).items()},
            "turnover_penalty_bps": config.turnover_penalty_bps,
            "timesteps": chosen["timesteps"],
            "seed": chosen["seed"],
            "seeds": list(config.seeds),
            "hyperparameters": hyper,
            "data": [
                {
                    "symbol": s, "file": Path(training[s].data.path).name, "sha256": training[s].data.sha256,
                    "bars": ("the fake venue's seeded intraday paths of the file's days, rolled to "
                             f"{config.timeframe}" if config.intraday else "OHLC x AdjClose/Close"),
                    "train": _span_dates(training, s), "validation": _span_dates(validation, s),
                    "held_out": _span_dates(held_out, s),
                    "validation_episodes": len(validation[s].spans), "held_out_episodes": len(held_out[s].spans),
                }
                for s in config.symbols
            ],
        },
        "library_versions": _versions(),
        "contract": _contract(config, training, validation, held_out),
    }


def _contract(config: TrainConfig, training: dict[str, Phase], validation: dict[str, Phase],
              held_out: dict[str, Phase]) -> dict[str, Any]:
    """The model contract (adapters.policy.contract): what ``ttlive run``/``sim`` check a run against."""
    from adapters.policy.contract import TrainingData, build_contract, contract_json, timeframe_of

    first = min(_span_dates(training, s)[0] for s in config.symbols)
    last = max(_span_dates(validation, s)[1] for s in config.symbols)
    held = [min(_span_dates(held_out, s)[0] for s in config.symbols),
            max(_span_dates(held_out, s)[1] for s in config.symbols)]
    files = ", ".join(Path(p.data.path).name for p in training.values())
    run_timeframe = timeframe_of(config.decision_interval_s)
    if config.intraday:
        source = (f"the fake venue's seeded intraday paths (adapters/fake/market_replay.py) of the daily files "
                  f"{files}, rolled to {config.timeframe} as the engine rolls the stream's minutes")
        notes = ("A demonstration model trained on the timeframe it decides on; its held-out numbers are in "
                 "model_card.md and docs/evaluation/. Judge any policy with `ttlive evaluate` before paper.")
    else:
        source = f"daily OHLCV files {files} (OHLC x AdjClose/Close)"
        notes = "" if run_timeframe == "1Day" else (
            f"Trained on daily bars, meant to decide on {run_timeframe} bars: a deployment choice, not a trained "
            "property (every run audits it as a bar_timeframe advisory); judge it with `ttlive evaluate`.")
    contract = build_contract(
        decision_interval_s=config.decision_interval_s, training_bar_timeframe=config.timeframe,
        training_bar_source=source, symbols=list(config.symbols),
        training_data=TrainingData(first=first, last=last, held_out=held), notes=notes)
    return contract_json(contract)


def _row(name: str, summary: dict[str, Any]) -> str:
    return (f"| {name} | {summary['mean_bps']:+.2f} | {summary['median_bps']:+.2f} | {summary['std_bps']:.2f} | "
            f"{summary['winning_share']:.0%} / {summary['losing_share']:.0%} | {summary['fills_mean']:.1f} | "
            f"{summary['turnover_mean']:.3f} |")


def _spread(values: list[float], sign: str = "+") -> str:
    mean = statistics.fmean(values)
    spread = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{mean:{sign}.2f} ± {spread:.2f} (min {min(values):{sign}.2f}, max {max(values):{sign}.2f})"


def render_model_card(meta: dict[str, Any]) -> str:
    results = meta["results"]
    training = meta["training"]
    selection = meta["selection"]
    hyper = training["hyperparameters"]
    symbols = ",".join(row["symbol"] for row in training["data"])
    intraday = training["timeframe"] != "1Day"
    unit = "session" if intraday else "window"
    lines = [
        f"# Model card: {meta['model_id']}",
        "",
        "A small PPO policy (torch MLP 2x64, tanh) trained in a TensorTrade 1.0.3 environment on "
        f"{training['timeframe']} bars,",
        "selected on validation dates out of several training seeds, exported to ONNX (FP32, the default",
        "precision: see Precision) and dynamically quantised to INT8 weights. It is a **demonstration** model for the",
        "ttlive plumbing - it shows a policy deciding on the bars it learnt, paying its costs and not churning - not a",
        "strategy anyone should fund.",
        "",
        "## Data and walk-forward split",
        "",
        "| symbol | file | sha256 | train | validation | held out |",
        "|---|---|---|---|---|---|",
    ]
    for row in training["data"]:
        lines.append(f"| {row['symbol']} | {row['file']} | `{row['sha256'][:16]}…` | {row['train'][0]} .. "
                     f"{row['train'][1]} | {row['validation'][0]} .. {row['validation'][1]} "
                     f"({row['validation_episodes']} {unit}s) | {row['held_out'][0]} .. {row['held_out'][1]} "
                     f"({row['held_out_episodes']} {unit}s) |")
    if intraday:
        lines += [
            "",
            f"Bars: {training['data'][0]['bars']}. The fake venue turns each real day into one-minute bars (a seeded",
            "Brownian bridge from the day's open to its close through its high and low, volume U-shaped); training",
            "rolls them to the decision interval as the engine does. Each training seed plays its own path seed, so",
            "the same real days give different intraday paths; validation and held-out sessions play one fixed",
            f"path seed ({hyper['evaluation_path_seed']}). An episode is one whole session from a flat $100k start (as",
            "`ttlive evaluate` and the default session start), its first decisions seeing the sessions before. Nothing",
            "after the training range is seen in training; validation dates choose checkpoints and the seed; held-out",
            "dates only report.",
            "",
            "Costs: the venue's whole-cent touch (at least half a cent each side: 3 to 12 bps on these prices), 0.5-2",
            f"bps seeded slippage per market fill, and a turnover penalty of {training['turnover_penalty_bps']:g} bps",
            "of every dollar traded in the reward (not in the reported returns).",
        ]
    else:
        lines += ["", "OHLC are scaled by Adj Close / Close (dividends; the files' closes are already split-adjusted).",
                  f"Training episodes are random windows of {hyper['episode_bars']} bars inside the training range."]
    lines += [
        "",
        *_contract_lines(meta.get("contract", {})),
        "## Held-out results",
        "",
        f"Per {unit}, from a flat start, costs included; returns in bps of the starting equity (whole net worth",
        "traded as \"allowed\": live, RiskGuard allows 5 % of equity per position, so scale the dollars down).",
        "PPO rows are each seed's validation-selected checkpoint, argmax actions.",
        "",
        f"| policy | mean bps/{unit} | median | std | winning / losing {unit}s | fills/{unit} | turnover (x equity) |",
        "|---|---|---|---|---|---|---|",
    ]
    shipped = selection["shipped_seed"]
    for row in selection["seeds"]:
        mark = " (shipped)" if row["seed"] == shipped else ""
        lines.append(_row(f"PPO seed {row['seed']}{mark}", row["held_out"]))
    lines.append(_row("rule baseline (EMA cross)", selection["baselines"]["rule"]["held_out"]))
    held = [row["held_out"] for row in selection["seeds"]]
    lines += [
        "",
        f"- PPO across {len(held)} seeds, mean bps/{unit}: {_spread([h['mean_bps'] for h in held])}; fills/{unit}: "
        f"{_spread([h['fills_mean'] for h in held], sign='')}.",
        f"- Buy and hold (bought at the first decision bar's close, held to the last, no costs): "
        f"{held[0]['buy_and_hold_mean_bps']:+.2f} bps/{unit} on the same {unit}s.",
        f"- Staying flat earns 0 bps/{unit}.",
        "",
        "Validation (what selected them):",
        "",
        f"| seed | checkpoints: timesteps -> mean bps/{unit} (fills/{unit}) | kept |",
        "|---|---|---|",
    ]
    for row in selection["seeds"]:
        marks = ", ".join(
            f"{c['timesteps']} -> {c['validation']['mean_bps']:+.2f} ({c['validation']['fills_mean']:.1f})"
            for c in row["checkpoints"])
        lines.append(f"| {row['seed']} | {marks} | {row['validation_score_bps']:+.2f} at update {row['best_update']} |")
    rule_val = selection["baselines"]["rule"]["validation"]
    lines.append(f"| rule baseline | {rule_val['mean_bps']:+.2f} ({rule_val['fills_mean']:.1f}) | - |")
    distribution = ", ".join(f"{k} {v:.1%}" for k, v in results["held_out_action_distribution"].items())
    seeds = ",".join(str(s) for s in training["seeds"])
    lines += [
        "",
        "## The shipped policy, through the ONNX runtime",
        "",
        f"| symbol | mean bps/{unit} | median | std | winning / losing | fills/{unit} | turnover |",
        "|---|---|---|---|---|---|---|",
        *[_row(symbol, row) for symbol, row in results["held_out_fp32_by_symbol"].items()],
        "",
        f"- INT8 vs FP32 action agreement on the held-out observations: "
        f"{results['int8_vs_fp32_action_agreement']:.2%} of {results['agreement_observations']}.",
        f"- Held-out action distribution: {distribution}.",
        f"- {training['timesteps']} timesteps per seed, seeds {seeds}, shipped seed {training['seed']}. Reproduce (same"
        f" bytes on this machine kind): `ttlive train --symbols {symbols} --timeframe {training['timeframe']} --seeds "
        f"{seeds} --timesteps {hyper['timesteps']} --turnover-penalty-bps {training['turnover_penalty_bps']:g} "
        f"--train-end {hyper['train_end']} --validation-end {hyper['validation_end']} --out DIR` (`--workers 2` runs "
        "two seeds at once; each seed's result does not depend on it).",
        "- Through the whole engine (RiskGuard, kill switch, audit) on replayed held-out dates: "
        "`docs/evaluation/default-model/` (`ttlive evaluate default`).",
        "",
        "## Precision: FP32 is the default",
        "",
        "FP32 is the default (`core.config.PolicySection.precision`). Spec 3.1 asks for INT8 for speed; on this",
        "machine kind FP32 measured faster at batch 1 (BENCHMARKS.md, inference rows), and INT8's dynamic input",
        "quantisation makes a row's action depend on the rows batched with it (FP32 does not). INT8 stays exported",
        "and selectable (`precision = \"int8\"`) with the >= 95 % agreement check. Re-measure after retraining:",
        "`python -m tools.bench --only latency`.",
        "",
        "## Inputs and actions",
        "",
        f"- Feature schema version {meta['feature_schema_version']}, {meta['n_features']} float32 inputs named in",
        "  model.json (`core/features.py`): per bar over 32 bars return z-score, range, body, volume z-score; RSI(14),",
        "  EMA(12/26) gap, realised vol, vol ratio, close-in-range, momentum; the position as a fraction of allowed.",
        f"- {len(meta['actions'])} discrete actions (action space v{meta['action_space_version']}, long-only): CANCEL,",
        "  flat x {MARKET, LIMIT_AGGRESSIVE, LIMIT_PASSIVE}, long {25, 50, 100}% of allowed x the same three.",
        "  An action is a target exposure; `adapters/policy/actions.plan_target` turns it into one order intent.",
        "",
        "## Honest caveats",
        "",
        *([
            "- **Do not read the held-out P&L as an edge on real markets.** The intraday paths are the fake's (a",
            "  Brownian bridge through each real day's open, high, low and close), and a resting limit fills when a",
            "  later bar trades through it, with no queue position and no adverse selection. A policy that rests",
            "  passive limits at the touch and waits (see the action distribution above: CANCEL and",
            "  LIMIT_PASSIVE dominate) earns the spread on such paths; real order books charge for that. What the",
            "  numbers do show: the policy decides on the bars it learnt, pays its costs and does not churn.",
            "- The held-out days are real days the model never saw, on paths it never saw; real minute bars (or",
            "  an adverse-selection model in the fake) are the next step for a policy worth funding.",
        ] if intraday else ["- Daily bars: one decision a day; the default session runs it every 300 s."]),
        "- A few minutes of PPO per seed on a few thousand sessions: the seeds' spread above is the honest error bar.",
        "- Training orders carry no bracket legs; `core.orderplan` attaches them to live entries by default, and",
        "  RiskGuard caps every position at 5 % of equity: the engine's P&L is the table's scaled down, its exits",
        "  may differ. `ttlive evaluate` measures the policy as deployed.",
        "",
        "## Library versions",
        "",
        ", ".join(f"{k} {v}" for k, v in sorted(meta["library_versions"].items())),
        "",
    ]
    return "\n".join(line for line in lines if line is not None)


def _contract_lines(contract: dict[str, Any]) -> list[str]:
    """The model contract (model.json ``contract``) as the card states it."""
    if not contract:
        return []
    data = contract["training_data"]
    held = f"; held out {data['held_out'][0]} .. {data['held_out'][1]}" if data.get("held_out") else ""
    return [
        "## Contract",
        "",
        "What `ttlive run`/`sim` check a run against (`adapters/policy/contract.py`; model.json `contract`):",
        "",
        f"- decision interval {contract['decision_interval_s']:g} s ({contract['bar_timeframe']} decision bars: "
        f"{contract['bar_source']});",
        f"- trained on {contract['training_bar_timeframe']} bars: {contract['training_bar_source']};",
        f"- symbols {', '.join(contract['symbols'])}; training data {data['first']} .. {data['last']}{held};",
        f"- feature schema v{contract['feature_schema_version']}, spec sha256 "
        f"`{contract['feature_spec_sha256'][:16]}…`; action space v{contract['action_space_version']}, map sha256 "
        f"`{contract['action_map_sha256'][:16]}…`.",
        *([f"- {contract['notes']}"] if contract.get("notes") else []),
        "",
        "A config with another `policy.decision_interval_s` is refused (exit 2) unless it lists the field in",
        "`policy.contract_override` (audited warning); symbols outside the training set and decision bars other",
        "than the training bars are audited advisories. Judge the model with `ttlive evaluate` before paper.",
        "",
    ]
