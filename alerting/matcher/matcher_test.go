package matcher

import "testing"

func TestMatchesEmpty(t *testing.T) {
	for _, tc := range []struct {
		m    string
		want bool
	}{
		{`check="out-of-hours"`, false},
		{`check=""`, true},
		{`check!="out-of-hours"`, true},
		{`check!=""`, false},
		{`check=~".*"`, true},
		{`check=~".+"`, false},
		{`check=~"out-of-hours|"`, true},
		{`check!~".*"`, false},
		{`check!~"out-.*"`, true},
	} {
		m, err := Parse(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		if got := m.MatchesEmpty(); got != tc.want {
			t.Errorf("%s.MatchesEmpty() = %v, want %v", tc.m, got, tc.want)
		}
	}
}
