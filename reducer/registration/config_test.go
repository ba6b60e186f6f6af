package registration_test

import (
	"strings"
	"testing"
	"time"

	"github.com/registrar-go/registrar/reducer/registration"
)

func TestConfigValidate(t *testing.T) {
	tooLong := registration.MaxDuration + time.Nanosecond
	tests := []struct {
		name string
		cfg  registration.Config
		want []string // substrings of the error; none: valid
	}{
		{name: "zero means defaults", cfg: registration.Config{}},
		{name: "the longest durations", cfg: registration.Config{
			AckTimeout: registration.MaxDuration, LivenessInterval: registration.MaxDuration,
			LivenessWindow: registration.MaxDuration, ConsulTTL: registration.MaxDuration,
		}},
		{name: "negative ConsulTTL turns passes off", cfg: registration.Config{ConsulTTL: -time.Second}},
		{name: "negative durations", cfg: registration.Config{AckTimeout: -1, LivenessInterval: -time.Second, LivenessWindow: -time.Hour},
			want: []string{"AckTimeout -1ns is negative", "LivenessInterval -1s is negative", "LivenessWindow -1h0m0s is negative"}},
		{name: "durations past MaxDuration", cfg: registration.Config{
			AckTimeout: tooLong, LivenessInterval: tooLong, LivenessWindow: 1<<63 - 1, ConsulTTL: tooLong,
		}, want: []string{"AckTimeout 87600h0m0.000000001s is longer than MaxDuration (87600h0m0s)",
			"LivenessInterval", "LivenessWindow 2562047h47m16.854775807s is longer", "ConsulTTL"}},
		{name: "every problem at once", cfg: registration.Config{
			AckTimeout: -1, LivenessWindow: tooLong,
			Topics: registration.Topics{Ack: registration.TopicHeartbeat},
		}, want: []string{"AckTimeout", "LivenessWindow", "named twice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			_, newErr := registration.New(tt.cfg)
			if len(tt.want) == 0 {
				if err != nil || newErr != nil {
					t.Fatalf("Validate = %v, New = %v; want valid", err, newErr)
				}
				return
			}
			if err == nil || newErr == nil {
				t.Fatalf("Validate = %v, New = %v; want errors containing %q", err, newErr, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "registrar/registration: invalid config: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
