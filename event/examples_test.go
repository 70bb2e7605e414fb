package event

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// requireExamplesEnv makes missing HL7 example packages a failure rather
// than a skip (scripts/test sets it, as does CI=true).
const requireExamplesEnv = "DPIAWATCH_REQUIRE_FHIR_EXAMPLES"

// examplePackages are the official HL7 example packages that
// scripts/install-fhir-examples fetches from the npm registry.
var examplePackages = []string{"hl7.fhir.r4.examples-4.0.1", "hl7.fhir.r5.examples-5.0.0"}

// exampleDir returns where pkg is unpacked, skipping or failing t when it
// is not.
func exampleDir(t *testing.T, pkg string) string {
	t.Helper()
	dir := filepath.Join("..", ".cache", "fhir", pkg)
	if _, err := os.Stat(filepath.Join(dir, "INSTALLED")); err == nil {
		return dir
	}
	if os.Getenv("CI") != "" || os.Getenv(requireExamplesEnv) == "1" {
		t.Fatalf("%s is not installed; run scripts/install-fhir-examples", pkg)
	}
	t.Skip(pkg + " is not installed (scripts/install-fhir-examples); set " + requireExamplesEnv + "=1 to fail instead")
	return ""
}

// exampleResult is one line of an example package's golden file: what one
// AuditEvent of the package (or of one of its Bundles) decodes to.
type exampleResult struct {
	File string `json:"file"`
	goldenResult
}

// TestFHIRExamples decodes every AuditEvent in the official HL7 R4 and R5
// example packages — standalone, and inside their Bundles — and compares
// the events and rejections with testdata/fhir-examples/<package>.golden.jsonl
// (go test -update rewrites them). Each line is checked by hand before an
// update: docs/fhir.md lists what each example kind becomes.
func TestFHIRExamples(t *testing.T) {
	for _, pkg := range examplePackages {
		t.Run(pkg, func(t *testing.T) {
			dir := exampleDir(t, pkg)
			paths, err := filepath.Glob(filepath.Join(dir, "*.json"))
			if err != nil {
				t.Fatal(err)
			}
			d := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "st-martins", System: "fhir-gateway"})
			var out bytes.Buffer
			events := 0
			for _, p := range paths {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				rt, _ := resourceTypeOf(b)
				if rt != "AuditEvent" && (rt != "Bundle" || !bytes.Contains(b, []byte(`"AuditEvent"`))) {
					continue
				}
				// The packages' files are one resource each, larger than a
				// Kafka message limit would allow only for Bundles.
				big := NewDecoder(DecoderOptions{Format: FormatFHIR, Org: "st-martins", System: "fhir-gateway", MaxBytes: len(b) + 1})
				if len(b) <= DefaultMaxBytes {
					big = d
				}
				for _, r := range big.DecodeAll(b, nil) {
					if r.Entry >= 0 && entryType(t, r.Resource) != "AuditEvent" {
						continue // a Bundle's other resources (definitions) are not this test's
					}
					res := exampleResult{File: filepath.Base(p), goldenResult: resultOf(t, &r.Event, r.Err)}
					if r.Entry >= 0 {
						res.Entry = &r.Entry
					}
					line, err := stdjson.Marshal(res)
					if err != nil {
						t.Fatal(err)
					}
					out.Write(append(line, '\n'))
					events++
				}
			}
			if events == 0 {
				t.Fatalf("no AuditEvent in %s", dir)
			}
			golden(t, filepath.Join("testdata", "fhir-examples", strings.SplitN(pkg, "-", 2)[0]+".golden.jsonl"), out.Bytes())
		})
	}
}

func entryType(t *testing.T, resource []byte) string {
	var r struct {
		ResourceType string `json:"resourceType"`
	}
	if err := stdjson.Unmarshal(resource, &r); err != nil {
		t.Fatal(err)
	}
	return r.ResourceType
}
