package main

import (
	"runtime/debug"
	"testing"
)

func TestFormatVersion(t *testing.T) {
	for _, c := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "a930c055da96c85486a26eb516c804419fd8e459"},
			{Key: "vcs.time", Value: "2026-12-02T01:07:13Z"},
			{Key: "vcs.modified", Value: "false"},
		}}, "nexus v1.4.0 a930c055da96c85486a26eb516c804419fd8e459 2026-12-02T01:07:13Z go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "a930c05"}, {Key: "vcs.modified", Value: "true"},
		}}, "nexus (devel) a930c05+dirty go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8"}, "nexus (devel) go1.26.8"},
	} {
		if got := formatVersion(&c.bi); got != c.want {
			t.Errorf("formatVersion = %q, want %q", got, c.want)
		}
	}
}
