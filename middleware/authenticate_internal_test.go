package middleware

import "testing"

// FuzzBearerFastPath checks that bearer's fast path answers exactly as the
// full parse does.
func FuzzBearerFastPath(f *testing.F) {
	for _, s := range []string{
		"Bearer ck_test_4eC39HqLyjWDarjtT1zdp7dc4eC39HqL", "bearer abc", "BEARER  abc", "Bearer abc ",
		"Bearer a b", "Bearer ", "Bearer", "Bearer\tabc", "Bearer abc\x00", "Bearer ab=c", "Bearer abc==",
		"Basic abc", " Bearer abc", "Bearer é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		gotTok, gotOK, gotErr := bearer(v)
		wantTok, wantOK, wantErr := parseBearer(v)
		if gotTok != wantTok || gotOK != wantOK || gotErr != wantErr {
			t.Fatalf("bearer(%q) = %q, %v, %v; the full parse says %q, %v, %v", v, gotTok, gotOK, gotErr, wantTok, wantOK, wantErr)
		}
	})
}
