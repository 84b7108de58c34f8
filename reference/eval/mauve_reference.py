"""Reference values for Nebula's MAUVE (mauve-text 0.4, faiss k-means, sklearn PCA).

Three cases of feature vectors, 300 human (P) and 300 model (Q) vectors of dimension 32 each:
  identical  — P and Q drawn from the same Gaussian,
  mid        — Q's mean moved a little,
  far        — Q's mean moved far.
For each: the features (little-endian float32, P rows then Q rows, in <case>.f32), and from the package
with seed 25 and default settings: MAUVE, its quantized histograms p and q, the divergence curve, plus
the PCA explained-variance ratios of the L2-normalised joint data (as the package computes them), and
MAUVE for seeds 0...9: with 300 vectors in 30 clusters, the k-means seed alone moves MAUVE by a few
hundredths, so implementations with different k-means compare by their mean over seeds.
Run: python3 reference/eval/mauve_reference.py
"""
import json
import pathlib
import numpy as np
import mauve
from sklearn.decomposition import PCA
from sklearn.preprocessing import normalize

N, D, SEED = 300, 32, 25
FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "Tests/NebulaEvalTests/Fixtures/mauve"


def features(rng):
    center = rng.normal(size=D) * 2      # LM features do not sit at the origin
    direction = rng.normal(size=D)
    direction /= np.linalg.norm(direction)
    p = center + rng.normal(size=(N, D))
    same = center + rng.normal(size=(N, D))
    near = center + 1.4 * direction + rng.normal(size=(N, D))
    far = center + 8 * direction + rng.normal(size=(N, D))
    return {"identical": (p, same), "mid": (p, near), "far": (p, far)}


def main():
    FIXTURES.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(2021)
    summary = {"n": N, "dimension": D, "seed": SEED, "mauve_text_version": "0.4.0", "cases": {}}
    for name, (p, q) in features(rng).items():
        p, q = p.astype(np.float32), q.astype(np.float32)
        np.concatenate([p, q]).astype("<f4").tofile(FIXTURES / f"{name}.f32")
        out = mauve.compute_mauve(p_features=p, q_features=q, seed=SEED)
        joint = normalize(np.vstack([q, p]), norm="l2", axis=1)
        ratios = PCA(n_components=None, whiten=False).fit(joint).explained_variance_ratio_
        summary["cases"][name] = {
            "mauve": float(out.mauve),
            "num_buckets": int(out.num_buckets),
            "p_hist": out.p_hist.tolist(),
            "q_hist": out.q_hist.tolist(),
            "divergence_curve": out.divergence_curve.tolist(),
            "explained_variance_ratio": ratios.tolist(),
            "pca_dimension": int(np.argmax(np.cumsum(ratios) >= 0.9)) + 1,
            "mauve_by_seed": [float(mauve.compute_mauve(p_features=p, q_features=q, seed=s).mauve) for s in range(10)],
        }
        by_seed = summary["cases"][name]["mauve_by_seed"]
        print(name, out.mauve, out.num_buckets, summary["cases"][name]["pca_dimension"],
              "seeds 0-9: mean", np.mean(by_seed), "std", np.std(by_seed))
    (FIXTURES / "mauve.json").write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
