package service

import (
	"reflect"
	"testing"

	"github.com/wsdest/wsdest/internal/config"
	"github.com/wsdest/wsdest/internal/kafka"
)

func TestKafkaSettings(t *testing.T) {
	names := kafka.SettingNames{CAFile: "KAFKA_TLS_CA_FILE", PortalAPI: "Quix__Portal__Api", SDKToken: "Quix__Sdk__Token", WorkspaceID: "Quix__Workspace__Id"}
	tests := []struct {
		name string
		env  map[string]string
		want kafka.Settings
	}{
		{"dev broker", map[string]string{"DEV_BROKER_ADDR": "127.0.0.1:1", "CONSUMER_GROUP": "g"},
			kafka.Settings{Topic: "input", Group: "g", ResetLatest: true, Brokers: []string{"127.0.0.1:1"}, Names: names}},
		{"brokers", map[string]string{"Quix__Broker__Address": "a:1,b:2", "input": "t", "AUTO_OFFSET_RESET": "earliest",
			"KAFKA_SASL_MECHANISM": "plain", "KAFKA_SASL_USERNAME": "u", "KAFKA_SASL_PASSWORD": "p", "KAFKA_TLS_CA_FILE": "/ca.pem"},
			kafka.Settings{Topic: "t", Brokers: []string{"a:1", "b:2"}, SASL: &kafka.SASL{Mechanism: "PLAIN", Username: "u", Password: "p"},
				TLS: &kafka.TLSSettings{CAFile: "/ca.pem"}, Names: names}},
		{"quix cloud", map[string]string{"Quix__Sdk__Token": "tok", "Quix__Portal__Api": "https://p", "Quix__Workspace__Id": "ws", "input": "t"},
			kafka.Settings{Topic: "t", ResetLatest: true, Quix: &kafka.QuixSettings{SDKToken: "tok", PortalAPI: "https://p", WorkspaceID: "ws"}, Names: names}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			if got := kafkaSettings(cfg); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
