// The `replicas: 3` overlay (deploy/kubernetes-replicas): kubectl kustomize renders it, every
// object passes its schema, and each replica's environment makes a valid clustered config: Redis,
// the shared secret, its own pod IP advertised, the shared cache claim, the CA Secret required.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { describe, expect, test } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { parseConfig } from '../../src/config/load.ts';

const OVERLAY = resolve(import.meta.dirname, '../../deploy/kubernetes-replicas');
const hasKubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

interface EnvEntry {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string }; secretKeyRef?: { name: string; key: string } };
}
type Rendered = {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  spec: {
    replicas?: number;
    accessModes?: string[];
    volumeClaimTemplates?: { metadata: { name: string } }[];
    template: {
      spec: {
        containers: { env?: EnvEntry[]; ports?: { name: string; containerPort: number }[] }[];
        volumes: {
          name: string;
          persistentVolumeClaim?: { claimName: string };
          secret?: { optional?: boolean };
        }[];
      };
    };
  };
};

describe('deploy/kubernetes-replicas', () => {
  test.skipIf(!hasKubectl)(
    `renders three clustered replicas${hasKubectl ? '' : ' (skipped: kubectl is not installed)'}`,
    () => {
      const out = spawnSync('kubectl', ['kustomize', OVERLAY], { encoding: 'utf8' });
      expect(out.stderr).toBe('');
      const objects = parseAllDocuments(out.stdout).map((doc) => doc.toJS() as Rendered);
      for (const object of objects) {
        const Model = MODELS[`${object.apiVersion}/${object.kind}`];
        if (!Model) throw new Error(`no schema for ${object.apiVersion} ${object.kind}`);
        new Model(object as never).validate();
      }
      const sts = objects.find((o) => o.kind === 'StatefulSet')!;
      expect(sts.spec.replicas).toBe(3);
      const pod = sts.spec.template.spec;
      // One shared cache claim (ReadWriteMany), no per-pod cache; the CA Secret is required.
      expect(sts.spec.volumeClaimTemplates?.map((claim) => claim.metadata.name)).toEqual(['ca']);
      const cache = pod.volumes.find((volume) => volume.name === 'cache')?.persistentVolumeClaim?.claimName;
      const claim = objects.find((o) => o.kind === 'PersistentVolumeClaim' && o.metadata.name === cache);
      expect(claim?.spec.accessModes).toEqual(['ReadWriteMany']);
      expect(pod.volumes.find((volume) => volume.name === 'ca-secret')?.secret?.optional).toBe(false);
      expect(objects.some((o) => o.kind === 'Service' && o.metadata.name === 'pullthrough-redis')).toBe(true);

      // The environment the kubelet would give pod 0 makes a valid clustered config.
      const container = pod.containers[0]!;
      expect(container.ports).toContainEqual({ name: 'cluster', containerPort: 9129 });
      const fields: Record<string, string> = {
        'status.podIP': '10.244.1.7',
        'metadata.name': 'pullthrough-0',
      };
      const env: Record<string, string> = {};
      for (const { name, value, valueFrom } of container.env ?? []) {
        if (value !== undefined)
          env[name] = value.replace(/\$\((\w+)\)/g, (_, ref: string) => env[ref] ?? '');
        else if (valueFrom?.fieldRef) env[name] = fields[valueFrom.fieldRef.fieldPath] ?? '';
        else if (valueFrom?.secretKeyRef) env[name] = 'a-cluster-secret-from-the-secret';
      }
      const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
      const config = parseConfig(parse(configMap.data!['config.yaml']!) as unknown, env, 'configmap', '/');
      expect(config.cluster).toMatchObject({
        redis: 'redis://pullthrough-redis:6379',
        id: 'pullthrough-0',
        advertise: 'http://10.244.1.7:9129',
        listen: { host: '0.0.0.0', port: 9129 },
      });
      expect(config.cache.dir).toBe('/cache');
    },
  );
});
