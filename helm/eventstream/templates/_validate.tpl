{{/*
Checks the schema cannot express; rendering fails with a message naming the
values (and pools) at fault. Included once, from configmap.yaml.
*/}}
{{- define "eventstream.validate" -}}
{{- $v := .Values -}}
{{- $errs := list -}}
{{- if not $v.secrets.existingSecret -}}
  {{- if not $v.secrets.databaseURL -}}
    {{- $errs = append $errs "secrets.databaseURL is required (or set secrets.existingSecret)" -}}
  {{- end -}}
  {{- if not $v.secrets.kafkaBrokers -}}
    {{- $errs = append $errs "secrets.kafkaBrokers is required (or set secrets.existingSecret)" -}}
  {{- end -}}
  {{- if and $v.secrets.auth.hs256Secret $v.secrets.auth.jwksURL -}}
    {{- $errs = append $errs "secrets.auth: set only one of hs256Secret and jwksURL" -}}
  {{- end -}}
{{- end -}}
{{- $owner := dict -}}
{{- $wildcard := list -}}
{{- $names := dict -}}
{{- $partitions := int $v.kafka.topicPartitions -}}
{{- range $p := $v.delivery.pools -}}
  {{- if hasKey $names $p.name -}}
    {{- $errs = append $errs (printf "delivery.pools: two pools are named %q" $p.name) -}}
  {{- end -}}
  {{- $_ := set $names $p.name true -}}
  {{- if has "*" $p.tenants -}}
    {{- $wildcard = append $wildcard $p.name -}}
    {{- if gt (len $p.tenants) 1 -}}
      {{- $errs = append $errs (printf "delivery.pools: pool %q combines \"*\" with tenant names" $p.name) -}}
    {{- end -}}
  {{- end -}}
  {{- range $t := $p.tenants -}}
    {{- if ne $t "*" -}}
      {{- if hasKey $owner $t -}}
        {{- $errs = append $errs (printf "delivery.pools: tenant %q is in pools %q and %q (tenant sets must be disjoint)" $t (get $owner $t) $p.name) -}}
      {{- else -}}
        {{- $_ := set $owner $t $p.name -}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
  {{- $max := int (default $partitions $p.maxReplicas) -}}
  {{- if gt $max $partitions -}}
    {{- $errs = append $errs (printf "delivery.pools: pool %q maxReplicas %d is above kafka.topicPartitions %d (extra replicas would get no partition)" $p.name $max $partitions) -}}
  {{- end -}}
  {{- if gt (int $p.replicas) $partitions -}}
    {{- $errs = append $errs (printf "delivery.pools: pool %q replicas %d is above kafka.topicPartitions %d (extra replicas would get no partition)" $p.name (int $p.replicas) $partitions) -}}
  {{- end -}}
{{- end -}}
{{- if gt (len $wildcard) 1 -}}
  {{- $errs = append $errs (printf "delivery.pools: at most one pool may hold \"*\", found %s" (join ", " $wildcard)) -}}
{{- end -}}
{{- if $errs -}}
  {{- fail (printf "\n%s" (join "\n" $errs)) -}}
{{- end -}}
{{- end -}}
