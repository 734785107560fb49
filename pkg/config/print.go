package config

import (
	"fmt"
	"reflect"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"
)

// Redact renders cfg as YAML, keys in field order, with every set Secret
// shown as "[REDACTED]". It is what services print as their effective
// configuration at startup.
func Redact(cfg any) (string, error) {
	node := toNode(reflect.ValueOf(cfg))
	b, err := yaml.Marshal(node)
	if err != nil {
		return "", fmt.Errorf("rendering configuration: %w", err)
	}
	return string(b), nil
}

func toNode(v reflect.Value) *yaml.Node {
	scalar := func(s, tag string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Value: s, Tag: tag}
	}
	switch {
	case !v.IsValid():
		return scalar("null", "!!null")
	case v.Type() == secretType:
		return scalar(v.Interface().(Secret).String(), "!!str")
	case v.Type() == reflect.TypeFor[time.Duration]():
		return scalar(time.Duration(v.Int()).String(), "!!str")
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return scalar("null", "!!null")
		}
		return toNode(v.Elem())
	case reflect.Struct:
		n := &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range keysOf(v.Type()) {
			n.Content = append(n.Content, scalar(k.tag, "!!str"), toNode(v.FieldByIndex(k.index)))
		}
		return n
	case reflect.Slice, reflect.Array:
		n := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for i := 0; i < v.Len(); i++ {
			e := toNode(v.Index(i))
			if e.Kind != yaml.ScalarNode {
				n.Style = 0
			}
			n.Content = append(n.Content, e)
		}
		return n
	case reflect.Map:
		n := &yaml.Node{Kind: yaml.MappingNode}
		m := toMap(v, true).(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			n.Content = append(n.Content, scalar(k, "!!str"), toNode(v.MapIndex(reflect.ValueOf(k).Convert(v.Type().Key()))))
		}
		return n
	case reflect.String:
		return scalar(v.String(), "!!str")
	default:
		return scalar(fmt.Sprint(v.Interface()), "")
	}
}
