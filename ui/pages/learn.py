"""Learn: weak lensing, KS93, shape noise, the mass-sheet degeneracy and the Wiener filter.

Each section has its own sliders or toggles (a row above its figures), its numbers (a
wrapping row of cards) and its figures (the responsive grid of :mod:`ui.layout`), and
draws from cached, noiseless simulations (:func:`lensviz.simulate.simulate_truth`);
nothing heavy runs inside an expander.
"""

import numpy as np
import pandas as pd
import streamlit as st

from lensviz import constants
from lensviz.depth import ks93_sigma
from lensviz.inversion import fourier_kernels, ks93, ks93inv
from lensviz.lab import findings
from lensviz.metrics import find_peaks, pearson_r, rmse
from lensviz.plots import (
    add_whiskers,
    fourier_cells,
    line_figure,
    map_cells,
    outline_regions,
    reliability_figure,
    robust_range,
)
from lensviz.plots.lab import pareto_figure
from lensviz.profiles import region_masks, region_rmse, tangential_profile
from lensviz.simulate import add_shape_noise
from lensviz.wiener import noise_power
from ui import cache
from ui.layout import figure_grid
from ui.sidebar import current
from ui.text import WIENER_NAME

NOISE_SEED = cache.NOISE_SEED  # the galaxies drawn for the noise sections
M200_CHOICES = (1e14, 2e14, 5e14, 1e15, 2e15)  # M☉/h
NGAL_CHOICES = (1, 2, 3, 5, 10, 20, 30, 50, 100, 300, 1000)  # galaxies per arcmin²
A_PIX = constants.PIXEL_ARCMIN**2  # pixel area, arcmin²
CORE_ARCMIN = 5.0  # default radius of the "cluster core" region around the main peak
EDGE_ARCMIN = 4.0  # default width of the edge band


def _solar_masses(m: float) -> str:
    """``5e14`` → ``"5×10¹⁴"``."""
    mantissa, exponent = f"{m:.0e}".split("e")
    return f"{mantissa}×10{str(int(exponent)).translate(_SUPERSCRIPT)}"


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


#: Grid cells of the line figures (profiles, spectra): at least this wide [px].
LINE_CELL_PX = 380


def cards(numbers: dict) -> None:
    """A wrapping row of metric cards: ``{label: value}`` or ``{label: (value, help)}``."""
    with st.container(horizontal=True, gap="medium"):
        for label, value in numbers.items():
            value, help_ = value if isinstance(value, tuple) else (value, None)
            st.metric(label, value, help=help_, width="content")


# === Sections ===


def shear_section(sel) -> dict:
    st.header("1 · A mass bends light: the shear pattern")
    st.markdown(
        "A galaxy cluster deflects the light of the galaxies behind it. To first order the "
        "image of each background galaxy is magnified (by the **convergence** κ) and "
        "stretched (by the **shear** γ = γ₁ + iγ₂). κ is the projected mass in units of "
        "the critical surface density:"
    )
    st.latex(
        r"\kappa(\boldsymbol\theta)=\frac{\Sigma(\boldsymbol\theta)}{\Sigma_{\rm cr}},"
        r"\qquad \Sigma_{\rm cr}=\frac{c^2}{4\pi G}\frac{D_{\rm s}}{D_{\rm l}D_{\rm ls}}."
    )
    st.markdown(
        "A galaxy's observed ellipticity is its intrinsic one plus the *reduced* shear "
        "g = γ/(1 − κ); intrinsic shapes are random, so averaging many galaxies gives g. "
        "Around a mass, the stretch is **tangential**, and its azimuthal mean measures the "
        "mass inside the radius:"
    )
    st.latex(
        r"\varepsilon \simeq e_{\rm s} + g,\qquad "
        r"\gamma_t = -\,\mathrm{Re}\!\left[\gamma\,e^{-2i\phi}\right],\qquad "
        r"\langle\gamma_t\rangle(\theta) = \bar\kappa(<\theta) - \bar\kappa(\theta)."
    )
    c_mass, c_z, c_real = st.columns(3, vertical_alignment="bottom")
    with c_mass:
        m200 = st.select_slider(
            "Cluster mass M200 [M☉/h]",
            M200_CHOICES,
            5e14,
            format_func=_solar_masses,
            key="learn_m200",
        )
    with c_z:
        z = st.slider(
            "Cluster redshift",
            0.1,
            0.6,
            0.3,
            0.05,
            key="learn_z",
            help=f"Sources at z = {constants.Z_SOURCE:g}.",
        )
    with c_real:
        realistic = st.toggle(
            "Realistic field",
            False,
            key="learn_realistic",
            help="Add subhalos, field halos, an elliptical profile and "
            "large-scale structure, as in the built-in data set.",
        )
    c = cache.teaching_cluster(m200, z, realistic)
    h = c["halo"]
    cards(
        {
            "Concentration c200": f"{h.c:.2f}",
            "Scale radius r_s": f"{h.r_s_arcmin:.2f}′",
            "Peak κ": f"{c['kappa'].max():.3f}",
            "Largest |g|": f"{np.hypot(c['gamma1'], c['gamma2']).max():.3f}",
        }
    )
    axes = sel.axes_for(c["kappa"].shape, constants.PIXEL_ARCMIN)
    (whiskers,) = map_cells({"κ and the reduced shear g": c["kappa"]}, axes=axes)
    add_whiskers(whiskers, c["gamma1"], c["gamma2"], step=8, color="white", axes=axes)
    r, gt, diff = tangential_profile(c["kappa"], c["shear1"], c["shear2"], (h.y, h.x))
    profile = line_figure(
        r * constants.PIXEL_ARCMIN,
        {"⟨γt⟩ measured on the map": gt, "κ̄(<θ) − κ̄(θ)": diff},
        xlabel="radius θ from the centre [arcmin]",
        ylabel="tangential shear γt",
        dashed=("κ̄(<θ) − κ̄(θ)",),
    )
    figure_grid([whiskers, profile], "learn_shear")
    st.caption(
        "Left (or top): white sticks show the direction and size of g averaged over 8 × 8 "
        "pixel blocks, tangential around the cluster. Right: the two sides of the equation "
        "above agree, which is what lets us weigh clusters with shapes."
    )
    return c


def fourier_section(c: dict) -> None:
    st.header("2 · What KS93 does, in Fourier space")
    st.markdown(
        "In Fourier space the shear is the convergence times a phase that depends only on "
        "the direction φₖ of the wave vector; Kaiser & Squires (1993) undo it by "
        "multiplying by the opposite phase. Nothing else happens: the filter has modulus 1, "
        "so KS93 neither smooths nor suppresses noise."
    )
    st.latex(
        r"\hat\gamma = e^{2i\phi_k}\hat\kappa = "
        r"\frac{(k_1^2-k_2^2) + 2ik_1k_2}{k^2}\,\hat\kappa,\qquad "
        r"\hat\kappa_E + i\hat\kappa_B = e^{-2i\phi_k}\,\hat\gamma \quad (k\neq 0)."
    )
    c_noisy, c_round = st.columns(2)
    with c_noisy:
        noisy = st.toggle(
            "Noisy galaxy shapes",
            False,
            key="learn_fourier_noisy",
            help=f"Galaxies at {constants.N_GAL_ARCMIN2:g} per arcmin². Shape "
            "noise is white: its spectrum is flat and KS93 passes it to every "
            "scale of κ.",
        )
    round_trip = c_round.toggle("Round trip κ → γ → κ", True, key="learn_round_trip")
    kappa = c["kappa"]
    g1, g2 = ks93inv(kappa)
    if noisy:
        eps = add_shape_noise(g1, g2, np.random.default_rng(NOISE_SEED))
        g1, g2 = eps[..., 0], eps[..., 1]
    cos2, sin2, _ = fourier_kernels(*kappa.shape)
    k_e = ks93(g1, g2)[0]

    def log_amp(m):
        return np.log10(np.abs(np.fft.fft2(m)) + 1e-6)

    amps = {
        "log₁₀|κ̂| (true)": log_amp(kappa),
        "log₁₀|γ̂₁|" + (" (noisy)" if noisy else ""): log_amp(g1),
        "log₁₀|κ̂_E| from KS93": log_amp(k_e),
    }
    figure_grid(
        fourier_cells(
            {"cos 2φₖ": cos2, "sin 2φₖ": sin2}, zrange=(-1.0, 1.0), colorbar_title="kernel"
        ),
        "learn_kernels",
    )
    lo, hi = robust_range(list(amps.values()), 1.0, 100.0)
    figure_grid(
        fourier_cells(
            amps, colorscale="Viridis", zrange=(lo, hi), colorbar_title="log₁₀ amplitude"
        ),
        "learn_amps",
    )
    st.caption(
        "First: the two kernels, γ̂₁ = cos 2φₖ κ̂ and γ̂₂ = sin 2φₖ κ̂. Centre: zero "
        "frequency. The kernels are quadrupoles: a κ wave along x "
        "(φₖ = 0) gives pure γ₁, one along the diagonal pure γ₂. The mean (centre "
        "pixel) and the Nyquist row and column are set to 0. Then the amplitudes of κ, "
        "of the shear and of the KS93 map, on one logarithmic scale."
    )
    if round_trip:
        numbers = {
            "Mean of true κ": (f"{kappa.mean():.5f}", None),
            "Mean of KS93 κ": (f"{k_e.mean(dtype=np.float64):.0e}", None),
        }
        if not noisy:
            rest = kappa - k_e - (kappa - k_e).mean()
            numbers["Largest |difference − mean|"] = (
                f"{np.abs(rest).max():.1e}",
                "What is left is the Nyquist row and column, which the kernel zeroes "
                "(see DESIGN.md).",
            )
        cards(numbers)
        figure_grid(
            map_cells(
                {
                    "true κ": kappa,
                    "KS93 of its shear" + (" + noise" if noisy else ""): k_e,
                    "difference (true − KS93)": kappa - k_e,
                },
                axes=current().axes_for(kappa.shape, constants.PIXEL_ARCMIN),
            ),
            "learn_round_trip_maps",
        )


def noise_section(sel) -> None:
    st.header("3 · Galaxy density: the noise that KS93 cannot remove")
    st.markdown(
        "Each pixel's ε averages N galaxies, N ~ Poisson(n_gal · A_pix), so the intrinsic "
        "shapes leave a noise of σ_e/√N per component. KS93 maps that white noise to white "
        "noise of the same size in κ: with the default density it is larger than the "
        "cluster signal almost everywhere. A Gaussian smoothing of σ pixels divides the noise "
        "by about 2√π σ, and blurs the cluster; the UNet learned its own trade-off."
    )
    st.latex(
        r"\sigma_{\rm pix}=\frac{\sigma_e}{\sqrt{n_{\rm gal}A_{\rm pix}}},\qquad "
        r"\sigma_{\kappa,\,\rm raw}\simeq\sigma_{\rm pix},\qquad "
        r"\sigma_{\kappa,\,\sigma}\simeq\frac{\sigma_{\rm pix}}{2\sqrt{\pi}\,\sigma}."
    )
    model = None
    if sel.model_path is not None:
        try:
            model = cache.unet_model(sel)
        except (ValueError, OSError) as exc:
            st.error(f"Could not load the UNet {sel.model_name!r}: {exc}")
    sweep = cache.noise_sweep(sel, NGAL_CHOICES, with_unet=model is not None)
    n_gal = st.select_slider(
        "Galaxy density n_gal [per arcmin²]",
        NGAL_CHOICES,
        constants.N_GAL_ARCMIN2,
        key="learn_ngal",
        help="LSST-like depth is 30. The shipped UNet was trained on 3–1000 galaxies "
        "per arcmin² and noise-free maps: it reads the noise from Δε.",
    )
    i = NGAL_CHOICES.index(n_gal)
    sigma_pix = constants.SIGMA_E / np.sqrt(n_gal * A_PIX)
    truth = sweep["kappa"]
    numbers = {
        "Galaxies per pixel": (f"{n_gal * A_PIX:.2f}", None),
        "Noise per pixel σ_pix": (f"{sigma_pix:.3f}", None),
    }
    for name, maps in sweep["preds"].items():
        numbers[f"RMSE · {name}"] = (
            f"{float(rmse(truth, maps[i])):.4f}",
            f"Pearson r = {float(pearson_r(truth, maps[i])):.3f}",
        )
    cards(numbers)
    if model is None:
        st.caption("No UNet weights: the UNet is left out.")
    maps = {"true κ": truth} | {name: m[i] for name, m in sweep["preds"].items()}
    axes = sel.axes_for(truth.shape, constants.PIXEL_ARCMIN)
    figure_grid(
        map_cells(maps, zrange=robust_range(truth, 0.5, 99.9), axes=axes), "learn_noise_maps"
    )
    curves = {name: rmse(np.broadcast_to(truth, m.shape), m) for name, m in sweep["preds"].items()}
    st.plotly_chart(
        line_figure(
            NGAL_CHOICES,
            curves,
            xlabel="galaxy density n_gal [per arcmin²]",
            ylabel="RMSE against the true κ",
            log_x=True,
            log_y=True,
            marker_x=n_gal,
            marker_label=f"n_gal = {n_gal:g}",
        ),
        key="learn_noise_curve",
        theme=None,
    )
    st.caption(
        f"Same field and galaxy draws at every density; the colour scale is the "
        f"true κ's, so noise beyond it saturates. KS93 is smoothed by the depth rule "
        f"(σ = {sweep['ks93_sigma_px'][i]:.2g} px here, from the noise in Δε; "
        "lensviz.depth.ks93_sigma). Below about 10 per arcmin² "
        "many pixels hold no galaxy (ε = 0 there): raw KS93 gets less noise but "
        "also almost no signal, so its RMSE falls while its correlation with the "
        "truth (hover the ? of each RMSE) collapses."
    )


def mass_sheet_section(c: dict, sel) -> None:
    st.header("4 · The mass-sheet degeneracy: why KS93's mean is zero")
    st.markdown(
        "A uniform sheet of mass, κ₀, lives only in the k = 0 Fourier mode, which has no "
        "direction φₖ, so it produces no shear at all. Shear cannot see it, and KS93 "
        "sets that mode to 0: its maps always have mean 0. With the reduced shear the exact "
        "invariance is a rescaling, κ → λκ + (1 − λ), which leaves g unchanged."
    )
    st.latex(
        r"\kappa \to \kappa + \kappa_0:\quad \hat\gamma(\mathbf k)\ \text{unchanged};"
        r"\qquad \kappa \to \lambda\kappa + (1-\lambda):\quad "
        r"g=\frac{\gamma}{1-\kappa}\ \text{unchanged}."
    )
    kappa = c["kappa"]
    k0 = st.slider(
        "Add a uniform sheet κ₀", -0.05, 0.10, 0.05, 0.005, key="learn_sheet", format="%.3f"
    )
    g1a, g2a = ks93inv(kappa)
    g1b, g2b = ks93inv(kappa + np.float32(k0))
    k_e = ks93(g1b, g2b)[0]
    dgamma = max(np.abs(g1a - g1b).max(), np.abs(g2a - g2b).max())
    cards(
        {
            "Mean κ": f"{kappa.mean():.4f}",
            "Mean κ + κ₀": f"{(kappa + k0).mean():.4f}",
            "Largest shear difference": f"{dgamma:.1e}",
            "Mean of KS93 κ": f"{k_e.mean(dtype=np.float64):.0e}",
        }
    )
    row = int(round(c["halo"].y))
    ks_name = "KS93 of the shear of either"
    x = np.arange(kappa.shape[1]) * constants.PIXEL_ARCMIN
    st.plotly_chart(
        line_figure(
            x,
            {"κ": kappa[row], "κ + κ₀": kappa[row] + k0, ks_name: k_e[row]},
            xlabel="x [arcmin] (cut through the cluster centre)",
            ylabel="κ",
            dashed=(ks_name,),
            colors={"κ": "#000000", "κ + κ₀": "#ff7f0e", ks_name: "#1f77b4"},
        ),
        key="learn_sheet_profile",
        theme=None,
    )
    st.caption(
        "Both fields give the same shear to float precision, so KS93 returns the "
        "same map for both: the true one shifted to mean 0."
    )
    if sel.has_truth and sel.model_path is not None:
        st.markdown(
            "A UNet is not bound by this: trained on simulations, it learns the typical "
            "mean κ of such fields, a prior. On the sidebar's current sample:"
        )
        cols = st.columns(3)
        cols[0].metric("True mean κ", f"{sel.sample_kappa.mean():.4f}")
        try:
            cols[1].metric("UNet mean κ", f"{cache.unet_kappa(sel).mean():.4f}")
        except (ValueError, OSError) as exc:
            cols[1].caption(f"UNet unavailable: {exc}")
        kappa_ks = ks93(sel.sample_eps[..., 0], sel.sample_eps[..., 1])[0]
        cols[2].metric("KS93 mean κ", f"{kappa_ks.mean(dtype=np.float64):.0e}")


def wiener_section(sel) -> None:
    st.header("5 · The Wiener filter, and where a UNet can beat it")
    st.markdown(
        "KS93 passes every Fourier mode of the shear through unchanged, noise included. A "
        "*linear* method can only weight each mode of the KS93 map, κ̂_E = κ̂ + n̂, by a "
        "factor W(k). With signal power S(k) and noise power N, a mode's mean-square error "
        "is |1 − W|² S + |W|² N, which is smallest for"
    )
    st.latex(
        r"W(k)=\frac{S(k)}{S(k)+N},\qquad "
        r"\big\langle|\hat\kappa-W\hat\kappa_E|^2\big\rangle_{\min}"
        r"=\frac{S(k)\,N}{S(k)+N}."
    )
    st.markdown(
        "Each mode is weighted by its signal-to-noise: kept where S ≫ N, suppressed where "
        "S ≪ N. This is the **Wiener filter**, the minimum-variance *linear* estimate for any "
        "field with power spectrum S. If κ is a **Gaussian** random field (and the noise "
        "Gaussian) the best estimate of all, the posterior mean, is itself linear, so no "
        "method, neural or not, can beat the Wiener filter on average. Here S is the power "
        "spectrum of simulated κ maps and N the noise of the sidebar's sample, from its Δε "
        "(one value for the whole map: the stationary approximation)."
    )
    try:
        signal = cache.power_spectrum()
    except (ValueError, OSError) as exc:
        st.error(f"Could not read the κ power spectrum: {exc}")
        return
    if signal is None:
        st.info(
            f"No κ power spectrum ({constants.POWER_SPECTRUM_FILE}) beside the weights: "
            "the filter cannot be drawn. Make it with `python -m lensviz powerspec`."
        )
        return
    k = signal.k_centres
    keep = (k > 0) & (signal.power > 0)
    k, power = k[keep], signal.power[keep]
    n = float(noise_power(sel.sample_eps[..., 2]))
    filt = power / (power + n)
    k_arcmin = k / constants.PIXEL_ARCMIN  # cycles per arcmin
    below = np.flatnonzero(power < n)
    k_eq = float(k_arcmin[below[0]]) if below.size else None  # first bin with S < N
    spectra = line_figure(
        k_arcmin,
        {"signal S(k) (simulated κ)": power, "noise N (this sample)": np.full_like(power, n)},
        xlabel="wavenumber |k| [cycles per arcmin]",
        ylabel="power per pixel",
        log_x=True,
        log_y=True,
        marker_x=k_eq,
        dashed=("noise N (this sample)",),
        colors={"signal S(k) (simulated κ)": "#000000", "noise N (this sample)": "#7f7f7f"},
    )
    weights = line_figure(
        k_arcmin,
        {"Wiener S/(S+N)": filt, "KS93 (all modes kept)": np.ones_like(filt)},
        xlabel="wavenumber |k| [cycles per arcmin]",
        ylabel="weight of the mode",
        log_x=True,
        marker_x=k_eq,
        dashed=("KS93 (all modes kept)",),
    )
    with st.grid(min_column_width=LINE_CELL_PX):
        st.plotly_chart(
            spectra.update_yaxes(exponentformat="power"), key="learn_wiener_spectra", theme=None
        )
        st.plotly_chart(weights, key="learn_wiener_filter", theme=None)
    crossing = (
        f" S falls below N at |k| ≈ {k_eq:.2g} cycles per arcmin (dotted line), "
        f"i.e. on scales smaller than about {1 / k_eq:.0f}′; there the filter drops "
        "towards 0."
        if k_eq
        else " S stays above N on every scale."
    )
    st.caption(
        f"Noise of sample {sel.index} ({sel.sample_name}): N = σ²_pix = {n:.2e} per "
        f"pixel.{crossing} The Wiener map is KS93 smoothed by a kernel that adapts to "
        "the noise: more galaxies, smaller N, less smoothing."
    )

    st.markdown(
        "**Where a UNet gains.** Cluster fields are not Gaussian. (1) A cluster core is a "
        "sharp, high, positive peak: a feature spread over many modes with aligned phases. "
        "S(k) knows only the power of each mode, not these phase correlations, and the core "
        "lives on small scales where S < N, so the linear filter smooths the peak away. A "
        "UNet trained on cluster fields can learn that non-Gaussian prior and keep peaks "
        "high and in place. (2) The **edges**: Fourier filters assume the map is periodic, "
        "so KS93 and Wiener wrap the shear across the border and err near the edges; the "
        "UNet's convolutions see the border and learn from training data how to "
        "reconstruct there. The table splits the error of the sidebar's sample into these "
        "regions."
    )
    if not sel.has_truth:
        st.info("The comparison by region needs the true κ, and this data has none.")
        return
    truth = sel.sample_kappa.astype(np.float64)
    c_core, c_edge = st.columns(2)
    with c_core:
        core_arcmin = st.slider(
            "Core radius r [arcmin]",
            1.0,
            15.0,
            CORE_ARCMIN,
            0.5,
            key="learn_core_radius",
            help="Around the highest peak of the true κ (smoothed by "
            f"σ = {constants.PEAK_SMOOTH_SIGMA_PX:g} px).",
        )
    edge_arcmin = c_edge.slider(
        "Edge band width [arcmin]", 1.0, 10.0, EDGE_ARCMIN, 0.5, key="learn_edge_width"
    )
    pos, height = find_peaks(truth, n=1)
    center = (
        tuple(int(v) for v in pos[0])
        if np.isfinite(height[0])
        else np.unravel_index(np.argmax(truth), truth.shape)
    )
    radius_px = core_arcmin / constants.PIXEL_ARCMIN
    border_px = int(round(edge_arcmin / constants.PIXEL_ARCMIN))
    masks = region_masks(truth.shape, center, radius_px, border_px)
    preds = {}
    if sel.model_path is not None:
        try:
            preds["UNet"] = cache.unet_kappa(sel)
        except (ValueError, OSError) as exc:
            st.error(f"Could not run the UNet {sel.model_name!r}: {exc}")
    try:
        wiener = cache.wiener_kappa(sel, pad=0)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the Wiener filter: {exc}")
        wiener = None
    if wiener is not None:
        preds[WIENER_NAME] = wiener
    sigma = ks93_sigma(sel.sample_eps[..., 2], sel.sigma_e, sel.pixel_arcmin)
    preds[f"KS93 (σ {sigma:.2g} px, depth rule)"] = cache.ks93_kappa(sel, sigma, 0)
    # Shift the mean-zero linear maps by the true mean, so that the regions compare
    # structure rather than the mass-sheet offset (which favours the UNet everywhere).
    mean = np.float32(truth.mean())
    shifted = {name: (p if name == "UNet" else p + mean) for name, p in preds.items()}
    shown = {f"true κ (sample {sel.index})": truth} | {
        name: shifted[name] for name in ("UNet", WIENER_NAME) if name in shifted
    }
    figures = map_cells(shown, zrange=robust_range(truth, 0.5, 99.9), axes=sel.axes)
    for fig in figures:
        outline_regions(
            fig,
            center=center,
            radius=radius_px,
            border=border_px,
            shape=truth.shape,
            axes=sel.axes,
        )
    table = pd.DataFrame.from_dict(region_rmse(truth, shifted, masks), orient="index").rename_axis(
        "method"
    )
    table.columns = [
        f"core (r < {core_arcmin:g}′)",
        f"edge band ({edge_arcmin:g}′)",
        "rest",
        "whole map",
    ]
    cards(
        {
            f"Core RMSE · {name}": (
                f"{table.iloc[:, 0][name]:.4f}",
                f"Outside the core: {table.iloc[:, 2][name]:.4f} (rest), "
                f"{table.iloc[:, 1][name]:.4f} (edge band)",
            )
            for name in table.index
        }
    )
    figure_grid(figures, "learn_wiener_maps")
    st.dataframe(
        table,
        key="learn_wiener_table",
        column_config={c: st.column_config.NumberColumn(format="%.4f") for c in table.columns},
    )
    st.caption(
        f"RMSE against the true κ in each region: the dashed circle is the core "
        f"({masks['core'].sum()} px), the dotted frame the inner edge of the band "
        f"({masks['edge band'].sum()} px). Wiener and KS93 are shifted by the true mean "
        f"κ̄ = {truth.mean():.4f} (which they cannot know) so that only the shapes are "
        "compared. A well-trained UNet's lead is largest in the core and smaller at the "
        "edges; one sample is noisy, so try a few (sidebar)."
    )


def loss_lab_section() -> None:
    st.header("6 · What the training loss buys: the loss lab")
    st.markdown(
        "The report's MultiFocal loss weighs each pixel's squared error by five maps meant "
        "to make the network attend to what the challenge scores: peaks (DPEAKS), the "
        "boundary between over- and under-dense regions (DICEE), bright pixels (WMAPE). Does "
        "it? The **loss lab** answers with a controlled experiment: the shipped "
        "architecture trained once per loss, from the same start, on the same data, for "
        "the same steps and seed, then scored on the same held-out maps beside KS93 and "
        "the Wiener filter. A difference is called better or worse only beyond twice its "
        "standard error."
    )
    lab = cache.lab_results()
    if isinstance(lab, str):
        st.info(lab)
        return
    st.markdown("\n".join(f"- {line}" for line in findings(lab)))
    depth = str(lab.raw.get("moonshot", {}).get("depth", lab.depths[0]))
    fig = pareto_figure(
        {lab.scores[depth]["label"]: lab.points(depth)}, height_per_row=400, legend="bottom"
    )
    st.plotly_chart(fig, key="learn_lab_pareto", theme=None)
    st.caption(
        f"Each model's mean on the lab's {lab.test_maps[0]} held-out maps at "
        f"{lab.scores[depth]['label']} ± its bootstrap standard error. Every depth, the "
        "table of every variant and how to rerun the lab: weights/lab/README.md. The Loss "
        "weights page rings the variant closest to its sliders."
    )


def errorbars_section(sel) -> None:
    st.header("7 · Error bars: a calibrated ±σ is not the spread of dropout passes")
    st.markdown(
        "Switch off random units of the UNet (Monte-Carlo dropout) or show it the field "
        "rotated and flipped, and its answer moves a little. That spread measures how much "
        "the *model* hesitates; it does not measure the *error* κ − κ̂, which comes mostly "
        "from the shape noise of the galaxies and from what no method can see (the mean "
        "mass, the holes, the structure below the noise). On held-out simulations the "
        "dropout band ±σ holds the true κ in only 4–7 % of the pixels, where an honest "
        "68 % band holds 68 %.\n\n"
        "A **calibrated** ±σ is fitted to the errors themselves. For KS93 and Wiener, the "
        "shape noise is propagated exactly through the filter, plus what the filter "
        "removes and what the data cannot know; for the UNet, a small second network "
        "learns, pixel by pixel, the 68.3 % quantile of its error |κ − κ̂| from what the UNet "
        "saw. Then one factor per depth and pixel scale, measured on simulated fields that "
        "neither network saw (split-conformal calibration), makes the band hold 68.3 % of "
        "the pixels. The 95.4 % band is calibrated on its own, because near cluster cores "
        "the errors have heavy tails and ±2σ would hold too few. What it promises is a "
        "share over many pixels of fields like the simulations: on the sky, it holds as "
        "far as the sky is like them."
    )
    if not st.toggle(
        "Check it on the sidebar's sample",
        key="learn_errorbars",
        help="Runs 20 Monte-Carlo-dropout passes and the calibrated error bars of the "
        "sidebar's UNet on its sample, and counts how often each band holds the true κ.",
    ):
        return
    if not (sel.has_truth and sel.is_tile):
        st.info(
            "This check needs a simulated 128 × 128 tile with its true κ (the built-in set): "
            "the dropout passes run on tiles, and coverage needs the truth."
        )
        return
    got = cache.unet_errorbars(sel)
    if isinstance(got, str):
        st.info(f"The UNet ({sel.model_name}): {got}.")
        return
    kappa, std, _ = got
    try:
        mean, spread = cache.unet_sigma(sel, "mc_dropout", cache.MC_PASSES)
    except (ValueError, OSError) as exc:
        st.error(f"Could not run the dropout passes: {exc}")
        return
    truth = sel.sample_kappa
    calibrated = cache.uncertainty_calibration(truth, kappa, std)
    dropout = cache.uncertainty_calibration(truth, mean, np.maximum(spread, 1e-12))
    c_fig, c_num = st.columns([3, 2], gap="medium")
    c_fig.plotly_chart(
        reliability_figure(
            calibrated["expected"],
            calibrated["observed"],
            z=calibrated["z"],
            name="calibrated σ̂",
            points={"±1σ": (calibrated["expected_1sigma"], calibrated["within_1sigma"])},
            others={
                f"dropout spread ({cache.MC_PASSES} passes)": (
                    dropout["expected"],
                    dropout["observed"],
                )
            },
        ),
        key="learn_errorbars_reliability",
        theme=None,
    )
    with c_num:
        cards(
            {
                "Calibrated ±σ̂ holds": (
                    f"{100 * calibrated['within_1sigma']:.0f} %",
                    f"mean σ̂ {calibrated['mean_sigma']:.4f}; RMSE {calibrated['rmse']:.4f}",
                ),
                "Dropout ±σ holds": (
                    f"{100 * dropout['within_1sigma']:.0f} %",
                    f"mean spread {dropout['mean_sigma']:.4f}",
                ),
            }
        )
        st.caption(
            "The share of this sample's pixels whose true κ lies within each band, against "
            "what a Gaussian σ of that width would hold (the diagonal). One sample's pixels "
            "are correlated: the Compare page's chips give the coverage over many maps."
        )


# === Page ===

sel = current()
st.markdown(
    "Seven short sections, each with its own control: how a cluster shears the galaxies "
    "behind it, what the Kaiser–Squires (KS93) inversion does, how the number of galaxies "
    "sets the noise, why KS93 cannot know the mean mass, why the Wiener filter is the "
    "best linear map but not the best map, what the training loss buys, and what an "
    "error bar on a mass map promises. The maps are "
    "128 × 128 pixels "
    f"of {constants.PIXEL_ARCMIN:g}′ (a {128 * constants.PIXEL_ARCMIN:g}′ field), sources at "
    f"z = {constants.Z_SOURCE:g}."
)
c = shear_section(sel)
st.divider()
fourier_section(c)
st.divider()
noise_section(sel)
st.divider()
mass_sheet_section(c, sel)
st.divider()
wiener_section(sel)
st.divider()
loss_lab_section()
st.divider()
errorbars_section(sel)
