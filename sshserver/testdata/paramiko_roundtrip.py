# paramiko's SFTP client (what Ansible and many Python tools use) against
# keyhole: put a file, get it back, list, stat, and a denied get.
# argv: host port login key cert remote_dir forbidden_file local_file out_file
import sys

import paramiko

host, port, login, key, cert, remote, forbidden, local, out = sys.argv[1:10]
pkey = paramiko.Ed25519Key.from_private_key_file(key)
pkey.load_certificate(cert)
t = paramiko.Transport((host, int(port)))
t.connect(username=login, pkey=pkey)
sftp = paramiko.SFTPClient.from_transport(t)
sftp.put(local, remote + "/from-paramiko.txt")
sftp.get(remote + "/from-paramiko.txt", out)
print("listed", sorted(sftp.listdir(remote)))
print("size", sftp.stat(remote + "/from-paramiko.txt").st_size)
try:
    sftp.get(forbidden, out + ".stolen")
    print("forbidden get succeeded")
except PermissionError:
    print("denied")
except IOError as e:
    print("error", e)
sftp.close()
t.close()
