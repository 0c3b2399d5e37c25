{{/*
Numbers and image references. Helm decodes every number of a values file (and of the values
stored for --reuse-values) as a float64, which Go's templates print as 1.7e+09 from a million
up: every number a template renders goes through int64 (or common.version below).
*/}}

{{/* A model version as text: 1700000000 (a float64 from a values file) renders as digits. */}}
{{- define "common.version" -}}
{{- if kindIs "string" . }}{{ . }}{{ else }}{{ int64 . }}{{ end }}
{{- end }}

{{/* Where the release workflow publishes the keras-serving images (gateway, model-loader, the demo
     model): the registry a bare repository name (no "/") resolves to when global.imageRegistry is
     empty. From there the chart pulls by digest only — the released chart carries the digests. */}}
{{- define "common.projectRegistry" -}}ghcr.io/keras-serving{{- end }}

{{/* An image reference: (dict "image" <repository/tag/digest> "tag" <default tag> "global" .Values.global
     "name" <what the image is, for messages> "path" <its values path>). A digest wins over a tag.
     A bare repository (`gateway`) is a keras-serving image: global.imageRegistry is prefixed to it,
     or the project's registry when that is empty — and then only a digest will do: nothing is
     pulled by a mutable tag from a namespace whose tags the chart cannot vouch for. A repository
     with a "/" (`tensorflow/serving`, `registry.example.com/team/model`) is used as written. */}}
{{- define "common.image" -}}
{{- $repository := toString .image.repository }}
{{- if not (contains "/" $repository) }}
{{- $registry := "" }}
{{- if .global }}{{ $registry = .global.imageRegistry | default "" }}{{ end }}
{{- if and (not $registry) (not .image.digest) }}
{{- fail (printf "%s image: `%s` is a keras-serving image, which resolves to %s/%s, and from there the chart pulls by digest only (a released chart carries the digests). From this source tree: `make release REGISTRY=<registry>` pushes the images and prints the install command; or push them yourself and set global.imageRegistry (e.g. registry.example.com/keras-serving), or set %s.digest, or set %s.repository to a full image reference (e.g. registry.example.com/team/%s)." .name $repository (include "common.projectRegistry" .) $repository .path .path $repository) }}
{{- end }}
{{- $repository = printf "%s/%s" (trimSuffix "/" ($registry | default (include "common.projectRegistry" .))) $repository }}
{{- end }}
{{- if .image.digest }}
{{- printf "%s@%s" $repository .image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (toString (.image.tag | default .tag)) }}
{{- end }}
{{- end }}

{{/* A number that may have a fraction (seconds): 30 -> "30", 2.5 -> "2.5", 1000000 -> "1000000". */}}
{{- define "common.number" -}}
{{- $f := float64 . }}
{{- if eq $f (float64 (int64 $f)) }}{{ int64 $f }}{{ else }}{{ $f }}{{ end }}
{{- end }}
