//go:build deploy

package helmtest

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// metaSelector is a rendered label selector as Kubernetes evaluates it; nil or empty selects
// nothing here, since every selector the chart writes must name its pods.
func metaSelector(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil || (len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0) {
		return labels.Nothing(), fmt.Errorf("empty label selector")
	}
	return metav1.LabelSelectorAsSelector(s)
}
