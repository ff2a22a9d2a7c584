package drift

import (
	"fmt"

	"github.com/kiln-ml/kiln/internal/dataset"
)

// Method names a drift test; the values are the report schema's
// (internal/report Test.Method) and Evidently's stattest names.
type Method string

// Drift test methods.
const (
	// MethodKS is the two-sample Kolmogorov-Smirnov test (numeric columns);
	// drift when its p-value is below the threshold.
	MethodKS Method = "ks"
	// MethodChiSquare is Pearson's chi-square test of the current category
	// counts against the reference shares (categorical columns); drift when
	// its p-value is below the threshold.
	MethodChiSquare Method = "chisquare"
	// MethodWasserstein is the first Wasserstein distance divided by the
	// reference's population standard deviation (at least 0.001), Evidently's
	// "normed" Wasserstein (numeric columns); drift when it is at or above
	// the threshold.
	MethodWasserstein Method = "wasserstein"
	// MethodJensenShannon is the Jensen-Shannon distance (natural log) of the
	// category shares, or for numeric columns of the display histogram's
	// shares; drift when it is at or above the threshold.
	MethodJensenShannon Method = "jensenshannon"
	// MethodPSI is the population stability index over the reference's
	// decile bins (numeric) or its categories plus "other" (categorical);
	// drift when it is at or above the threshold.
	MethodPSI Method = "psi"
)

// HasPValue reports whether the method's verdict is on a p-value (KS and
// chi-square) rather than on the statistic.
func (m Method) HasPValue() bool { return m == MethodKS || m == MethodChiSquare }

// appliesTo reports whether the method can test columns of the kind.
func (m Method) appliesTo(kind string) bool {
	switch m {
	case MethodJensenShannon, MethodPSI:
		return kind == KindNumeric || kind == KindCategorical
	case MethodKS, MethodWasserstein:
		return kind == KindNumeric
	case MethodChiSquare:
		return kind == KindCategorical
	}
	return false
}

// Options configures the drift tests. The zero value of any field means its
// default (DefaultOptions), so Options{} is Evidently's defaults.
type Options struct {
	// SmallReference is the largest reference (non-null rows) for which
	// the default tests are KS (numeric) and chi-square (categorical);
	// above it they are the normed Wasserstein distance and the
	// Jensen-Shannon distance. Default 1000, as Evidently.
	SmallReference int64
	// NumericMethod and CategoricalMethod, when set, force the test of
	// numeric and categorical columns whatever the reference size. A method
	// that does not apply to the kind (Validate reports it) is ignored.
	NumericMethod     Method
	CategoricalMethod Method

	// KSThreshold and ChiSquareThreshold are the p-values below which KS
	// and chi-square report drift (default 0.05). (Evidently's KS test
	// drifts at p <= threshold, its chi-square at p < threshold; Kiln uses
	// p < threshold for both, as the report schema documents.)
	KSThreshold        float64
	ChiSquareThreshold float64
	// WassersteinThreshold, JensenShannonThreshold and PSIThreshold are the
	// statistics at or above which those methods report drift (default
	// 0.1 each, Evidently's defaults; note that Compare's PSI threshold,
	// DefaultThreshold, is 0.2).
	WassersteinThreshold   float64
	JensenShannonThreshold float64
	PSIThreshold           float64

	// DatasetShare is the share of drifted columns at or above which the
	// dataset has drifted (default 0.5).
	DatasetShare float64

	// ExactPoints is the most distinct reference values a NumericReference
	// keeps exactly (default 2048); a reference with more keeps Bins
	// quantile bins instead. References of at most SmallReference rows are
	// always kept exactly (ExactPoints is raised to SmallReference).
	ExactPoints int
	// Bins is the number of fine quantile bins of a binned NumericReference
	// (default 1024).
	Bins int
	// PSIBins is the number of reference quantile bins for the PSI (default
	// dataset.DefaultBins, 10: deciles, as dataset.Profile).
	PSIBins int
	// HistogramBins is the number of display histogram bins (default 20).
	HistogramBins int
	// UnseenExamples is the number of unseen categories a categorical result
	// lists (default 10).
	UnseenExamples int
	// MaxUnseen is the number of distinct unseen categories an accumulator
	// counts one by one (default 10000); further ones are only counted in
	// total.
	MaxUnseen int
}

// DefaultOptions returns Evidently's data drift defaults with Kiln's
// binning defaults.
func DefaultOptions() Options {
	return Options{
		SmallReference:         1000,
		KSThreshold:            0.05,
		ChiSquareThreshold:     0.05,
		WassersteinThreshold:   0.1,
		JensenShannonThreshold: 0.1,
		PSIThreshold:           0.1,
		DatasetShare:           0.5,
		ExactPoints:            2048,
		Bins:                   1024,
		PSIBins:                dataset.DefaultBins,
		HistogramBins:          20,
		UnseenExamples:         10,
		MaxUnseen:              10000,
	}
}

// WithDefaults returns o with its zero fields set to the defaults: the
// values every function of the package actually uses (e.g. for showing the
// dataset share threshold beside DatasetVerdict's verdict).
func (o Options) WithDefaults() Options { return o.withDefaults() }

// withDefaults returns o with its zero fields set to the defaults.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	set := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	seti := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	if o.SmallReference <= 0 {
		o.SmallReference = d.SmallReference
	}
	set(&o.KSThreshold, d.KSThreshold)
	set(&o.ChiSquareThreshold, d.ChiSquareThreshold)
	set(&o.WassersteinThreshold, d.WassersteinThreshold)
	set(&o.JensenShannonThreshold, d.JensenShannonThreshold)
	set(&o.PSIThreshold, d.PSIThreshold)
	set(&o.DatasetShare, d.DatasetShare)
	seti(&o.ExactPoints, d.ExactPoints)
	seti(&o.Bins, d.Bins)
	seti(&o.PSIBins, d.PSIBins)
	seti(&o.HistogramBins, d.HistogramBins)
	seti(&o.UnseenExamples, d.UnseenExamples)
	seti(&o.MaxUnseen, d.MaxUnseen)
	if int64(o.ExactPoints) < o.SmallReference {
		o.ExactPoints = int(o.SmallReference)
	}
	return o
}

// Validate reports options that cannot be honoured: a forced method that
// does not apply to its kind, or a threshold out of range.
func (o Options) Validate() error {
	if o.NumericMethod != "" && !o.NumericMethod.appliesTo(KindNumeric) {
		return fmt.Errorf("drift: method %q does not apply to numeric columns (ks, wasserstein, jensenshannon, psi)", o.NumericMethod)
	}
	if o.CategoricalMethod != "" && !o.CategoricalMethod.appliesTo(KindCategorical) {
		return fmt.Errorf("drift: method %q does not apply to categorical columns (chisquare, jensenshannon, psi)", o.CategoricalMethod)
	}
	for name, v := range map[string]float64{"ks": o.KSThreshold, "chisquare": o.ChiSquareThreshold} {
		if v < 0 || v > 1 {
			return fmt.Errorf("drift: %s threshold %v is not a p-value in [0, 1]", name, v)
		}
	}
	for name, v := range map[string]float64{"wasserstein": o.WassersteinThreshold, "jensenshannon": o.JensenShannonThreshold, "psi": o.PSIThreshold} {
		if v < 0 {
			return fmt.Errorf("drift: %s threshold %v is negative", name, v)
		}
	}
	if o.DatasetShare < 0 || o.DatasetShare > 1 {
		return fmt.Errorf("drift: dataset share %v is not in [0, 1]", o.DatasetShare)
	}
	return nil
}

// MethodFor returns the test for a column of the kind (KindNumeric or
// KindCategorical) with referenceRows non-null reference values: the
// forced method for the kind if set and applicable, else Evidently's
// default — KS or chi-square for references of at most SmallReference rows,
// the normed Wasserstein or the Jensen-Shannon distance above. It returns
// "" for an unknown kind.
func (o Options) MethodFor(kind string, referenceRows int64) Method {
	o = o.withDefaults()
	small := referenceRows <= o.SmallReference
	switch kind {
	case KindNumeric:
		if o.NumericMethod != "" && o.NumericMethod.appliesTo(kind) {
			return o.NumericMethod
		}
		if small {
			return MethodKS
		}
		return MethodWasserstein
	case KindCategorical:
		if o.CategoricalMethod != "" && o.CategoricalMethod.appliesTo(kind) {
			return o.CategoricalMethod
		}
		if small {
			return MethodChiSquare
		}
		return MethodJensenShannon
	}
	return ""
}

// Threshold returns the method's threshold: a p-value for KS and
// chi-square, a statistic for the others.
func (o Options) Threshold(m Method) float64 {
	o = o.withDefaults()
	switch m {
	case MethodKS:
		return o.KSThreshold
	case MethodChiSquare:
		return o.ChiSquareThreshold
	case MethodWasserstein:
		return o.WassersteinThreshold
	case MethodJensenShannon:
		return o.JensenShannonThreshold
	case MethodPSI:
		return o.PSIThreshold
	}
	return 0
}
