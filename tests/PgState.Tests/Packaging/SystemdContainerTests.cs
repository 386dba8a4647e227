using PgState.Tests.Infrastructure;

namespace PgState.Tests.Packaging;

/// <summary>
/// The .deb on a Debian bookworm that boots systemd (systemd-nspawn, root filesystem from
/// scripts/systemd-rootfs.sh) with Debian's PostgreSQL running: the README's set-up, apply with
/// systemd as PID 1 (daemon-reload, timer enabled), then the backup service and the packaged drift
/// service started by systemd itself, their results read back from systemctl show and the journal.
/// </summary>
[Collection(MachineWide.Name)]
public class SystemdContainerTests
{
    private const string Manifest = """
        apiVersion: pgstate/v1
        kind: PostgresHost
        metadata: {name: ct1}
        spec:
          connection: {host: /var/run/postgresql, port: 5432, user: postgres}
          dataDirectory: /var/lib/postgresql/15/main
          hba:
            mode: managed-block
            rules:
              - {type: local, database: all, user: postgres, method: peer, options: {map: pgstate}}
              - {type: local, database: replication, user: backup_user, method: scram-sha-256}
          roles:
            - {name: backup_user, login: true, replication: true, password: {fromEnv: PG_BACKUP_PASSWORD}}
          directories:
            - {path: /var/backups/postgresql, owner: postgres, group: postgres, mode: "0700"}
          backups:
            - name: nightly
              schedule: "*-*-* 02:30:00"
              destination: /var/backups/postgresql
              connection: {user: backup_user, password: {fromEnv: PG_BACKUP_PASSWORD}}
              retention: {count: 3}
        """;

    [SystemdContainerFact]
    public async Task Under_a_real_systemd_the_installed_package_backs_up_from_its_service_and_the_timers_are_active()
    {
        var deb = InstalledPackage.Deb!;
        await using var machine = await NspawnMachine.BootAsync(NspawnMachine.RootFilesystem!, [(Path.GetDirectoryName(deb)!, "/mnt/packages")], TimeSpan.FromSeconds(90));
        await machine.RunOkAsync("dpkg", "-i", "/mnt/packages/" + Path.GetFileName(deb));
        Assert.Equal("active", (await machine.RunAsync(["systemctl", "is-active", "postgresql@15-main"])).StandardOutput.Trim());

        // The README's one-time set-up: root (pgstate apply) and postgres (the jobs) both connect as postgres.
        await machine.RunOkAsync("sh", "-c",
            "printf 'pgstate root postgres\\npgstate postgres postgres\\n' >> /etc/postgresql/15/main/pg_ident.conf && " +
            "sed -i '1i local all postgres peer map=pgstate' /etc/postgresql/15/main/pg_hba.conf && systemctl reload postgresql@15-main");
        await machine.RunOkAsync("sh", "-c", $"cat > /etc/pgstate/ct1.yaml <<'EOF'\n{Manifest}\nEOF");
        var secret = new Dictionary<string, string> { ["PG_BACKUP_PASSWORD"] = "s3cr%t $pass'word" };
        var apply = await machine.RunAsync(["pgstate", "apply", "--auto-approve", "/etc/pgstate/ct1.yaml"], secret);
        Assert.True(apply.ExitCode == 0, apply.StandardOutput + apply.StandardError);
        Assert.Contains("pgstate-backup-ct1-nightly.timer enabled and started", apply.StandardError);
        Assert.Equal(0, (await machine.RunAsync(["pgstate", "plan", "/etc/pgstate/ct1.yaml"], secret)).ExitCode);

        var timer = await machine.ShowAsync("pgstate-backup-ct1-nightly.timer", "ActiveState", "SubState", "UnitFileState", "Triggers", "NextElapseUSecRealtime");
        Assert.Equal(("active", "waiting", "enabled", "pgstate-backup-ct1-nightly.service"), (timer["ActiveState"], timer["SubState"], timer["UnitFileState"], timer["Triggers"]));
        Assert.NotEqual("", timer["NextElapseUSecRealtime"]);

        // systemctl start of a oneshot returns when the job has finished.
        var start = await machine.RunAsync(["systemctl", "start", "pgstate-backup-ct1-nightly.service"], timeout: TimeSpan.FromMinutes(3));
        var journal = (await machine.RunAsync(["journalctl", "--no-pager", "-o", "cat", "-u", "pgstate-backup-ct1-nightly.service"])).StandardOutput;
        Assert.True(start.ExitCode == 0, start.StandardError + journal);
        var service = await machine.ShowAsync("pgstate-backup-ct1-nightly.service", "Result", "ExecMainStatus", "User", "LoadCredential");
        Assert.Equal(("success", "0", "postgres"), (service["Result"], service["ExecMainStatus"], service["User"]));
        Assert.Contains("pg_verifybackup passed", journal);
        Assert.DoesNotContain("s3cr", journal);
        var owners = await machine.RunOkAsync("find", "/var/backups/postgresql", "!", "-user", "postgres");
        Assert.Equal("", owners.StandardOutput);
        var check = await machine.RunAsync(["pgstate", "check", "/etc/pgstate/ct1.yaml"]);
        Assert.True(check.ExitCode == 0, check.StandardOutput + check.StandardError);
        Assert.Contains("OK      backup:nightly", check.StandardOutput);

        // The packaged drift timer, enabled as the README says; its service run by systemd as postgres.
        await machine.RunOkAsync("systemctl", "enable", "--now", "pgstate-drift.timer");
        Assert.Equal("active", (await machine.ShowAsync("pgstate-drift.timer", "ActiveState"))["ActiveState"]);
        var drift = await machine.RunAsync(["systemctl", "start", "pgstate-drift.service"], timeout: TimeSpan.FromMinutes(2));
        var driftJournal = (await machine.RunAsync(["journalctl", "--no-pager", "-o", "cat", "-u", "pgstate-drift.service"])).StandardOutput;
        Assert.True(drift.ExitCode == 0, drift.StandardError + driftJournal);
        Assert.Contains("Host \"ct1\" is in sync.", driftJournal);
        await machine.RunOkAsync("test", "-s", "/var/lib/pgstate/pgstate.prom");

        // Removing the package stops and disables the drift timer; the backup schedule apply wrote stays.
        await machine.RunOkAsync("dpkg", "--purge", "pgstate");
        Assert.NotEqual(0, (await machine.RunAsync(["systemctl", "is-enabled", "pgstate-drift.timer"])).ExitCode);
        Assert.Equal("enabled", (await machine.RunAsync(["systemctl", "is-enabled", "pgstate-backup-ct1-nightly.timer"])).StandardOutput.Trim());
    }
}
