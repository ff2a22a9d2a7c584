// Package demodata generates deterministic synthetic datasets for demos and
// tests.
package demodata

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
)

// ChurnOptions configures WriteChurnCSV.
type ChurnOptions struct {
	// Rows is the number of customers (data rows) to generate.
	Rows int
	// Seed selects the random stream; the same options give the same bytes.
	Seed uint64
	// Drift shifts the feature distributions, from 0 (none, the training
	// population) to 1 (strong: a population stability index well above 0.2
	// on tenure, monthly_charges, total_charges, plan and support_calls).
	Drift float64
	// Concept changes what churn depends on, not who the customers are
	// (concept drift): from 0 (the training relationship) to 1, where the
	// effects of tenure, charges, support calls and the contract are
	// reversed. The features are drawn exactly as without it (same random
	// stream); only the labels differ.
	Concept float64
}

// ChurnHeader lists the columns written by WriteChurnCSV.
var ChurnHeader = []string{
	"customer_id", "tenure", "monthly_charges", "total_charges", "plan",
	"contract", "support_calls", "region", "paperless", "churned",
}

// Model coefficients of the churn label: logit(p) = churnIntercept + the
// effects below. The intercept gives about 25% churn at Drift 0.
const (
	churnIntercept   = -2.0
	effectMonthly    = 1.3   // month-to-month contract
	effectTwoYear    = -1.2  // two-year contract
	effectTenure     = -0.04 // per month of tenure, centred on 36
	effectCharges    = 0.025 // per unit of monthly charges, centred on 65
	effectCalls      = 0.4   // per support call, centred on 1.5
	effectPaperless  = 0.3
	effectPremium    = 0.2
	missingTenure    = 0.05
	missingRegion    = 0.02
	paperlessShare   = 0.6
	baseSupportCalls = 1.5
)

// WriteChurnCSV writes a synthetic customer churn dataset as CSV with the
// columns of ChurnHeader: customer_id ("C0000001"...), tenure (months 0..72,
// about 5% empty), monthly_charges (2 decimals, 20..120 plus 40×Drift),
// total_charges (about tenure × monthly_charges, empty where tenure is),
// plan (basic|standard|premium), contract (month-to-month|one-year|two-year),
// support_calls (0..10, Poisson-like), region (north|south|east|west, about 2%
// empty), paperless (true|false) and churned (0|1).
//
// The label is drawn from a logistic model in which month-to-month contracts,
// short tenure, high charges and support calls raise churn: about 25% churn,
// and a logistic regression on the features reaches an AUC around 0.85.
// Drift lowers tenure, raises monthly charges by 40×Drift, moves the plan mix
// towards premium, makes month-to-month contracts more common and raises
// support calls. The output depends only on opts (math/rand/v2 PCG seeded
// from Seed).
func WriteChurnCSV(w io.Writer, opts ChurnOptions) error {
	if opts.Rows < 0 {
		return fmt.Errorf("churn dataset: negative row count %d", opts.Rows)
	}
	if !(opts.Drift >= 0 && opts.Drift <= 1) {
		return fmt.Errorf("churn dataset: drift %v outside [0, 1]", opts.Drift)
	}
	if !(opts.Concept >= 0 && opts.Concept <= 1) {
		return fmt.Errorf("churn dataset: concept %v outside [0, 1]", opts.Concept)
	}
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	d := opts.Drift
	bw := bufio.NewWriterSize(w, 64<<10)
	for i, h := range ChurnHeader {
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString(h)
	}
	bw.WriteByte('\n')

	var line []byte
	for i := 1; i <= opts.Rows; i++ {
		c := drawCustomer(rng, d, opts.Concept)
		line = line[:0]
		line = fmt.Appendf(line, "C%07d,", i)
		if !c.tenureMissing {
			line = strconv.AppendInt(line, int64(c.tenure), 10)
		}
		line = append(line, ',')
		line = strconv.AppendFloat(line, c.monthly, 'f', 2, 64)
		line = append(line, ',')
		if !c.tenureMissing {
			line = strconv.AppendFloat(line, c.total, 'f', 2, 64)
		}
		line = append(line, ',')
		line = append(line, c.plan...)
		line = append(line, ',')
		line = append(line, c.contract...)
		line = append(line, ',')
		line = strconv.AppendInt(line, int64(c.calls), 10)
		line = append(line, ',')
		line = append(line, c.region...)
		line = append(line, ',')
		line = strconv.AppendBool(line, c.paperless)
		line = append(line, ',')
		if c.churned {
			line = append(line, '1')
		} else {
			line = append(line, '0')
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("writing churn dataset: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing churn dataset: %w", err)
	}
	return nil
}

// customer is one generated row.
type customer struct {
	tenure        int
	tenureMissing bool
	monthly       float64
	total         float64
	plan          string
	contract      string
	calls         int
	region        string // "" when missing
	paperless     bool
	churned       bool
}

// drawCustomer draws one customer at drift d, labelled under concept k.
func drawCustomer(rng *rand.Rand, d, k float64) customer {
	var c customer

	// Plan mix moves towards premium with drift.
	pBasic, pStandard := 0.40-0.25*d, 0.35
	u := rng.Float64()
	var lo, hi float64
	switch {
	case u < pBasic:
		c.plan, lo, hi = "basic", 20, 45
	case u < pBasic+pStandard:
		c.plan, lo, hi = "standard", 45, 80
	default:
		c.plan, lo, hi = "premium", 75, 115
	}
	m := lo + (hi-lo)*rng.Float64() + 3*rng.NormFloat64() + 40*d
	c.monthly = round2(math.Min(math.Max(m, 20), 120+40*d))

	// Contract: month-to-month becomes more common with drift.
	u = rng.Float64()
	pM2M, pOneYear := 0.50+0.15*d, 0.25-0.05*d
	switch {
	case u < pM2M:
		c.contract = "month-to-month"
	case u < pM2M+pOneYear:
		c.contract = "one-year"
	default:
		c.contract = "two-year"
	}

	// Tenure is uniform on 0..72 without drift, skewed short with drift.
	c.tenure = min(72, int(73*math.Pow(rng.Float64(), 1+1.5*d)))
	c.tenureMissing = rng.Float64() < missingTenure
	c.total = round2(math.Max(0, float64(c.tenure)*c.monthly*(1+0.05*rng.NormFloat64())))

	c.calls = min(10, poisson(rng, baseSupportCalls+2*d))
	c.region = []string{"north", "south", "east", "west"}[rng.IntN(4)]
	if rng.Float64() < missingRegion {
		c.region = ""
	}
	c.paperless = rng.Float64() < paperlessShare

	flip := 1 - 2*k
	logit := churnIntercept +
		flip*effectTenure*(float64(c.tenure)-36) +
		flip*effectCharges*(c.monthly-65) +
		flip*effectCalls*(float64(c.calls)-baseSupportCalls)
	switch c.contract {
	case "month-to-month":
		logit += flip * effectMonthly
	case "two-year":
		logit += flip * effectTwoYear
	}
	if c.paperless {
		logit += effectPaperless
	}
	if c.plan == "premium" {
		logit += effectPremium
	}
	c.churned = rng.Float64() < 1/(1+math.Exp(-logit))
	return c
}

// poisson draws from a Poisson distribution with mean lambda (Knuth's method,
// fine for small lambda).
func poisson(rng *rand.Rand, lambda float64) int {
	limit := math.Exp(-lambda)
	k, p := 0, rng.Float64()
	for p > limit {
		k++
		p *= rng.Float64()
	}
	return k
}

// round2 rounds to 2 decimals.
func round2(x float64) float64 { return math.Round(x*100) / 100 }
