package limit

import (
	"testing"

	"github.com/google/uuid"

	"github.com/keyward/keyward/apikey"
)

func TestPackQuota(t *testing.T) {
	tests := []struct {
		per        apikey.QuotaPeriod
		day, count int64
	}{
		{apikey.Day, 0, 0},
		{apikey.Day, 20526, 1},                           // 2026-03-14
		{apikey.Month, 106_751, apikey.MaxQuotaRequests}, // 2262
		{apikey.Month, -106_752, 7},                      // 1677
		{apikey.Day, dayBias - 1, countMask},
		{apikey.Day, -dayBias, 0},
	}
	for _, tc := range tests {
		per, day, count := unpackQuota(packQuota(tc.per, tc.day, tc.count))
		if per != tc.per || day != tc.day || count != tc.count {
			t.Errorf("unpack(pack(%v, %d, %d)) = %v, %d, %d", tc.per, tc.day, tc.count, per, day, count)
		}
	}
}

// Keys spread over the shards, version 7 UUIDs made in one millisecond
// too.
func TestShardSpread(t *testing.T) {
	m := NewMemory()
	for _, gen := range []struct {
		name string
		new  func() uuid.UUID
	}{
		{"v4", uuid.New},
		{"v7", func() uuid.UUID { return uuid.Must(uuid.NewV7()) }},
	} {
		var counts [shardCount]int
		const n = 64_000
		for range n {
			id := gen.new()
			s := m.shard(id)
			for i := range m.shards {
				if &m.shards[i] == s {
					counts[i]++
				}
			}
		}
		for i, c := range counts {
			if c < n/shardCount*8/10 || c > n/shardCount*12/10 {
				t.Errorf("%s: shard %d holds %d of %d keys", gen.name, i, c, n)
			}
		}
	}
}
